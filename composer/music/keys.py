"""Keys: their names, their signatures, and finding the key of some music.

A key is ``(tonic pitch class 0-11, "major" | "minor")``. Key finding is Krumhansl-Schmuckler:
the key whose profile best correlates with a duration-weighted pitch-class histogram. It runs
with one of two published profile sets, each where it serves best:

- ``KRUMHANSL`` (Krumhansl-Kessler probe-tone ratings) for reading a file that states no key
  and for the key-relative features of the reference library;
- ``AARDEN`` (Aarden-Essen, from Essen folk-song statistics; Humdrum's keycor and music21's
  default) for judging generated music against the key asked for. Its known weakness is hearing
  the subdominant as the tonic, exactly the mistake that judgement should screen out.
"""

from __future__ import annotations

import numpy as np

# Pitch classes spelled as key names (the spelling musicians expect for each key).
MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEYS = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")

Key = tuple[int, str]

# (major, minor) profiles, tonic first.
KRUMHANSL = (
    np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
)
AARDEN = (
    np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062,
              0.145624, 8.15494, 0.232998, 4.95122]),
    np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161,
              4.56621, 1.93186, 7.37619, 1.75623]),
)  # fmt: skip


def key_name(tonic: int, mode: str) -> str:
    """The key's name as the vocabulary spells it: "D", "Ebm"."""
    return (MINOR_KEYS if mode == "minor" else MAJOR_KEYS)[tonic % 12]


def parse_key(text: str) -> Key:
    """'D minor', 'Dm', 'F# major', 'Bb' -> (tonic pitch class, mode); ValueError lists keys."""
    t = text.strip().replace("♯", "#").replace("♭", "b")
    words = t.split()
    mode = "major"
    if len(words) == 2 and words[1].lower() in ("major", "minor", "maj", "min"):
        mode = "minor" if words[1].lower().startswith("min") else "major"
        t = words[0]
    elif t.endswith("m") and len(t) > 1 and not t.lower().endswith("maj"):
        mode, t = "minor", t[:-1]
    names = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
    if t and t[0].lower() in names and all(c in "#b" for c in t[1:]) and len(t) <= 2:
        pc = names[t[0].lower()] + t[1:].count("#") - t[1:].count("b")
        return pc % 12, mode
    valid = (
        ", ".join(f"{k} major" for k in MAJOR_KEYS)
        + ", "
        + ", ".join(f"{k[:-1]} minor" for k in MINOR_KEYS)
    )
    raise ValueError(f"unknown key {text!r}; valid keys: {valid}")


def key_signature(key: Key) -> tuple[int, int]:
    """(sharps, negative for flats; 0 major / 1 minor) of the key, as spelled by key_name."""
    tonic, mode = key
    major_tonic = (tonic + 3) % 12 if mode == "minor" else tonic
    fifths = (major_tonic * 7) % 12  # position on the circle of fifths from C
    if fifths > 6 or (fifths == 6 and "b" in key_name(*key)):
        fifths -= 12
    return fifths, int(mode == "minor")


def key_from_signature(sharps: int, minor: int) -> Key:
    """The key a MIDI key signature names (sharps, negative for flats; 1 for minor)."""
    major_tonic = (sharps * 7) % 12
    return ((major_tonic - 3) % 12, "minor") if minor else (major_tonic, "major")


def key_correlations(histogram: np.ndarray, profiles=AARDEN) -> np.ndarray:
    """Pearson correlation of a pitch-class histogram (12,) with each key's profile: (24,),
    the 12 major keys from C, then the 12 minor keys; zeros for a flat histogram."""
    hist = np.asarray(histogram, dtype=np.float64)
    if hist.std() == 0:
        return np.zeros(24)
    rows = np.stack([np.roll(p, t) for p in profiles for t in range(12)])  # (24, 12)
    rows = (rows - rows.mean(1, keepdims=True)) / rows.std(1, keepdims=True)
    return rows @ ((hist - hist.mean()) / hist.std()) / 12


def find_key(histogram: np.ndarray, profiles=AARDEN) -> Key:
    """The key whose profile best fits a duration-weighted pitch-class histogram (12,)."""
    k = int(np.argmax(key_correlations(histogram, profiles)))
    return k % 12, "minor" if k >= 12 else "major"
