"""What a text request asks for: explicit values and stated qualities by pattern, the rest by
meaning. ``compose``, ``plan`` and ``search`` read requests here.

Explicit values (a key, a tempo in bpm, a meter, a duration, an era, tempo words, "no drums":
composer.music.words; General MIDI instruments by name, here) are read with patterns and are
exact; one composer cannot write is recorded as ignored, with the reason, and one that
contradicts an earlier one as a conflict (the first is used). Qualities stated in words (tempo
feel, density, register, dynamics, articulation, voices, dances and forms, ensembles:
composer.music.qualities) are read next, each with its words and a confidence. The rest of the
text is matched with the MiniLM sentence model against the vocabularies in prompts/ (moods,
styles), each match with a confidence (cosine similarity); below ``threshold`` the video (or
the default) decides. Words no pattern placed are listed as unread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from composer.config import limits
from composer.errors import ComposerError
from composer.music.qualities import Reading, negated, read_qualities
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
    "viola": 41, "cello": 42, "contrabass": 43, "harp": 46, "strings": 48,
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
    readings: list[Reading] = field(default_factory=list)  # qualities stated in words
    unread: list[str] = field(default_factory=list)  # words no pattern placed

    def quality(self, attribute: str) -> Reading | None:
        """The reading of ``attribute`` ("tempo", "form", ...), if the request states one."""
        return next((r for r in self.readings if r.attribute == attribute), None)


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
    qualities = read_qualities(values.rest)
    facts.readings = qualities.readings
    facts.conflicts += qualities.conflicts
    facts.notes += [f"{r.attribute} {r.value} from {r.words!r} ({r.confidence:g})"
                    for r in qualities.readings]  # fmt: skip
    # An ensemble's words ("low strings", "brass band") name no single instrument, unless
    # other instruments are named beside them ("strings, piano and harp": three instruments).
    listed: list[str] = []
    programs, rest = instruments_in(values.rest, listed)
    if ensemble := [r.words for r in qualities.readings if r.attribute == "ensemble"]:
        others, alone = instruments_in(_without(values.rest, ensemble), [])
        if not others:
            programs, rest, listed = [], alone, []
    facts.instruments = programs
    facts.notes += listed
    facts.unread = _unread(_without(qualities.rest, [r.words for r in qualities.readings]), rest)
    facts.rest = re.sub(r"\s+", " ", rest).strip(" ,.;")
    if _meaningful(facts.rest):
        facts.mood = _named_mood(facts.rest) or _best("moods", facts.rest, threshold)
        facts.style = _best("styles", facts.rest, threshold)
        # Words the matched mood or style lists are placed, by the sentence model.
        matched = " ".join(_description(n, m.name) for n, m in
                           (("moods", facts.mood), ("styles", facts.style)) if m)  # fmt: skip
        facts.unread = [w for w in facts.unread if not re.search(rf"\b{w}", matched)]
    if not facts.notes and facts.mood is None and facts.style is None:
        facts.notes.append(
            "nothing in the request was understood: the video (or the defaults) decides"
            if text.strip()
            else "no request: the video (or the defaults) decides"
        )
    return facts


def instruments_in(text: str, notes: list[str]) -> tuple[list[int], str]:
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


# Words that carry no musical meaning of their own: never listed as unread.
_FUNCTION_WORDS = set(
    "a an the and or but for of in on at to with by from into onto through over under like as "
    "some something music piece tune song cue track score that this it its is are be very "
    "really quite rather more less me my our your we i you make write compose play please "
    "want need give let us some kind sort bit little".split()
)


def _without(text: str, phrases: list[str]) -> str:
    for phrase in phrases:
        text = re.sub(re.escape(phrase), " " * len(phrase), text, flags=re.I)
    return text


def _unread(after_qualities: str, after_instruments: str) -> list[str]:
    """Content words that neither the value, quality nor instrument patterns placed (the
    sentence model may still match them to a mood or a style; plan.json says so)."""
    left = set(re.findall(r"[a-z][a-z'-]+", after_instruments.lower()))
    words = re.findall(r"[a-z][a-z'-]+", after_qualities.lower())
    out = []
    for w in words:
        if w in left and w not in _FUNCTION_WORDS and w not in out:
            out.append(w)
    return out


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


NAMED = 0.9  # the confidence of a mood the request names with one of its listed words


def _named_mood(text: str) -> Match | None:
    """The mood whose listed words ("calm", "tender") the request uses most (the first named,
    of equals): a word the request says outright outweighs the sentence model's reading of the
    whole ("calm ... for a sunrise timelapse" is calm, however a timelapse embeds)."""
    rows, _ = _vocabulary("moods")
    lower = text.lower()
    best: tuple[int, int, list[str]] | None = None  # (-count, first position, row)
    for row in rows:
        hits = []
        for term in (t.strip() for t in row[-1].split(",")):
            for m in re.finditer(rf"\b{re.escape(term)}\b", lower):
                if not negated(lower, m.start()):
                    hits.append(m.start())
        if hits and (best is None or (-len(hits), min(hits)) < best[:2]):
            best = (-len(hits), min(hits), row)
    if best is None:
        return None
    row = best[2]
    return Match(row[0], NAMED, float(row[1]), float(row[2]))


def _description(name: str, entry: str) -> str:
    rows, _ = _vocabulary(name)
    return next(r[-1] for r in rows if r[0] == entry).lower()


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
