"""The tokenizer's configuration: a frozen dataclass that saves with every tokenizer file."""

from __future__ import annotations

from dataclasses import dataclass, field

# Pitch classes spelled as key names (the spelling musicians expect for each key).
MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEYS = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
ROLES = ("melody", "harmony1", "harmony2", "harmony3", "harmony4", "bass")
STYLES = ("chorale", "renaissance", "medieval", "quartet", "folk", "fiddle", "piano", "other")


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything that fixes the vocabulary; two tokenizers with equal specs are identical."""

    name: str = "remi-roles-v1"
    styles: tuple[str, ...] = STYLES
    roles: tuple[str, ...] = ROLES
    pitch_range: tuple[int, int] = (21, 109)
    # miditok beat_res: 12 steps per beat for the first 4 beats of a duration (1/16 notes and
    # triplets), 4 per beat after that.
    beat_res: tuple[tuple[int, int, int], ...] = ((0, 4, 12), (4, 12, 4))
    num_velocities: int = 4
    # Meters, as miditok's time_signature_range: denominator -> numerators.
    meters: tuple[tuple[int, tuple[int, ...]], ...] = (
        (8, (1, 2, 3, 4, 5, 6, 7, 9, 12)),
        (4, (1, 2, 3, 4, 5, 6, 7)),
        (2, (1, 2, 3, 4)),
    )
    # Bar intensity levels: thresholds on onsets per quarter note per sounding voice, scaled by
    # the mean velocity over that of an unmarked note. Below the first: 0; above the last: 3.
    intensity_thresholds: tuple[float, ...] = (0.6, 1.1, 1.9)
    max_hit_beats: int = 12  # Hit_0 .. Hit_11: a hit accent on that beat of the bar
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def intensity_levels(self) -> int:
        return len(self.intensity_thresholds) + 1

    def control_tokens(self) -> list[str]:
        """The tokens composer adds to miditok's vocabulary (as special tokens, fixed ids)."""
        return [
            "PAD_None", "BOS_None", "EOS_None",
            *(f"Style_{s}" for s in self.styles),
            *(f"Key_{k}" for k in MAJOR_KEYS + MINOR_KEYS),
            *(f"Intensity_{i}" for i in range(self.intensity_levels)),
            *(f"Hit_{b}" for b in range(self.max_hit_beats)),
            "Section_start",
        ]  # fmt: skip


def key_name(tonic: int, mode: str) -> str:
    """Key token suffix for a tonic pitch class and mode ("major" / "minor")."""
    return (MINOR_KEYS if mode == "minor" else MAJOR_KEYS)[tonic % 12]


def parse_key(text: str) -> tuple[int, str]:
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
