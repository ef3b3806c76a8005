"""What a text request asks for: explicit values by pattern, free text by meaning.

Explicit values (a key, a tempo in bpm, a meter, a duration, an era, tempo words, "no drums":
composer.music.words; General MIDI instruments by name, here) are read with patterns and are
exact; one composer cannot write is recorded as ignored, with the reason, and one that
contradicts an earlier one as a conflict (the first is used). The rest of the text is matched
with the MiniLM sentence model against the vocabularies in prompts/ (moods, styles), each match
with a confidence (cosine similarity); below ``threshold`` the video (or the default) decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from composer.config import limits
from composer.errors import ComposerError
from composer.music.words import read_values, sentence_model
from composer.paths import PROMPTS
from composer.tokens.spec import TokenizerSpec
from composer.types import _Json

THRESHOLD = 0.35  # cosine similarity a free-text match needs to count

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
class Ignored(_Json):
    """Words that state a value composer cannot use, and why."""

    words: str
    why: str


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
    era: str | None = None  # "1970s" from "70s disco": recorded; no plan choice reads it yet
    mood: Match | None = None
    style: Match | None = None
    notes: list[str] = field(default_factory=list)  # "bpm from '72 bpm'"
    ignored: list[Ignored] = field(default_factory=list)  # values composer cannot use
    conflicts: list[str] = field(default_factory=list)  # a second value unlike the first (used)
    rest: str = ""  # the free text left after explicit values were taken out


def parse_prompt(text: str, threshold: float = THRESHOLD) -> PromptFacts:
    """Read explicit values by pattern, then match the free text by meaning."""
    longest = limits().max_prompt_chars
    if len(text) > longest:
        why = f"the request is {len(text)} characters long; the longest composer reads is {longest}"
        raise ComposerError(None, why)
    values = read_values(text, TokenizerSpec().meters)
    facts = PromptFacts(
        text=text, key=values.key, bpm=values.bpm, meter=values.meter,
        duration=values.duration, drums=values.drums, tempo_range=values.tempo_range,
        era=values.era, notes=values.notes, ignored=[Ignored(*i) for i in values.ignored],
        conflicts=values.conflicts,
    )  # fmt: skip
    rest = values.rest
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


@lru_cache(maxsize=4)
def _vocabulary(name: str) -> tuple[list[list[str]], np.ndarray]:
    rows = []
    for line in (PROMPTS / f"{name}.tsv").read_text().splitlines():
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
