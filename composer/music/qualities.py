"""The qualities a request states in words: tempo feel, density, register, dynamics,
articulation, voices, and the dances, forms and ensembles it names.

The words live in tables (``prompts/qualities.tsv``, ``prompts/forms.tsv``,
``prompts/ensembles.tsv``, and the tempo, density and register rows of the instruction cues,
``prompts/instructions/cues.tsv``), so that what composer understands is edited there, not
here. Each reading keeps the words it came from and a confidence: 0.9 where a word states the
quality, less where a scene or a form implies it. A word after a negation ("not", "no",
"without") is not read as the quality it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from composer.music.words import blank
from composer.paths import PROMPTS
from composer.types import _Json

CUE_CONFIDENCE = 0.9  # an instruction cue states its value outright
FORM_CONFIDENCE = 0.8  # a dance or form names its meter; its tempo and texture are usual
IMPLIED = 0.7  # what a form implies beyond its name
_NEGATION = re.compile(r"\b(?:not|no|without|never|nor|instead of|rather than)\s+(?:\w+\s+)?$")


@dataclass
class Reading(_Json):
    """One quality read from a request, with the words it came from."""

    attribute: str  # tempo, density, register, dynamics, articulation, voices, form, ensemble
    value: str
    words: str
    confidence: float


@dataclass(frozen=True)
class Form:
    """A dance or form, and what it implies unless the request says otherwise."""

    name: str
    meter: tuple[int, int]
    tempo: tuple[float, float]  # quarter notes per minute
    texture: str
    style: str
    ensemble: str
    dynamics: str | None


@dataclass(frozen=True)
class Ensemble:
    """General MIDI programs, melody first and bass last, and what suits them."""

    name: str
    programs: tuple[int, ...]
    drums: bool | None  # None: as the request and the mood decide
    style: str


@dataclass
class Qualities:
    """What ``read_qualities`` found: one reading per attribute (the most confident; the first
    of equals), the readings that lost to it, and the text without the words read."""

    readings: list[Reading]
    conflicts: list[str]
    rest: str


def _rows(name: str) -> list[list[str]]:
    lines = (PROMPTS / name).read_text().splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def _pattern(words: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{words})\b")


@lru_cache(maxsize=1)
def forms() -> dict[str, Form]:
    out = {}
    for name, _, meter, tempo, texture, style, ensemble, dynamics in _rows("forms.tsv"):
        num, den = (int(x) for x in meter.split("/"))
        lo, hi = (float(x) for x in tempo.split("-"))
        out[name] = Form(name, (num, den), (lo, hi), texture, style, ensemble,
                         None if dynamics == "-" else dynamics)  # fmt: skip
    return out


@lru_cache(maxsize=1)
def ensembles() -> dict[str, Ensemble]:
    out = {}
    for name, _, programs, drums, style in _rows("ensembles.tsv"):
        said = {"yes": True, "no": False}.get(drums)
        out[name] = Ensemble(name, tuple(int(p) for p in programs.split(",")), said, style)
    return out


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, str, float, re.Pattern[str]], ...]:
    """(attribute, value, confidence, pattern) rows, in the order they are read: ensembles and
    forms first (longest names win their words), then the qualities, then the cues."""
    rows = []
    for name, pattern, *_ in _rows("ensembles.tsv"):
        if pattern != "-":
            rows.append(("ensemble", name, CUE_CONFIDENCE, _pattern(pattern)))
    for name, pattern, *_ in _rows("forms.tsv"):
        rows.append(("form", name, FORM_CONFIDENCE, _pattern(pattern)))
    for attribute, value, confidence, pattern in _rows("qualities.tsv"):
        rows.append((attribute, value, float(confidence), _pattern(pattern)))
    for attribute, value, pattern in _rows("instructions/cues.tsv"):
        if attribute in ("tempo", "density", "register", "meter"):
            rows.append((attribute, value, CUE_CONFIDENCE, _pattern(pattern)))
    return tuple(rows)


def read_qualities(text: str) -> Qualities:
    """The qualities ``text`` states. Words read for one attribute are not read again for the
    same attribute, but may state another ("a lullaby": a form, a slow tempo)."""
    lower = text.lower()
    found: dict[str, list[tuple[int, Reading]]] = {}
    taken: dict[str, str] = {}  # attribute -> the text with its words blanked
    rest = text
    for attribute, value, confidence, pattern in _table():
        scan = taken.setdefault(attribute, lower)
        for m in pattern.finditer(scan):
            if negated(lower, m.start()):
                continue
            reading = Reading(attribute, value, text[m.start() : m.end()], confidence)
            found.setdefault(attribute, []).append((m.start(), reading))
            taken[attribute] = scan = blank(scan, m.start(), m.end())
            rest = blank(rest, m.start(), m.end())
    readings, conflicts = [], []
    for attribute, seen in found.items():
        seen.sort(key=lambda pr: (-pr[1].confidence, pr[0]))
        best = seen[0][1]
        readings.append(best)
        for _, other in seen[1:]:
            if other.value != best.value:
                conflicts.append(
                    f"{other.words!r} ({attribute} {other.value}) yields to {best.words!r} "
                    f"({attribute} {best.value})"
                )
    return Qualities(readings, conflicts, rest)


def negated(lower: str, start: int) -> bool:
    """Whether the words at ``start`` follow a negation ("not too", "without")."""
    return _NEGATION.search(lower[:start]) is not None
