"""``composer eval requests``: does every word of a request reach the music?

Each request of a battery (``evals/requests/*.tsv``: a request, a tab, the attributes its words
state) is composed end to end, text only, and each stated attribute is measured on the
score.mid written (never read from plan.json):

- tempo: the class (slow < 80 <= moderate < 120 <= fast) of the mean quarter-note tempo;
- density: notes per quarter note per part, against the tertiles of the same measure over the
  shipped library's pieces of the plan's style (sparse: below the first, dense: above the
  second);
- register: the melody's mean pitch against the corpus tertiles the instruct adapter was
  trained with (low: below the first, high: above the second);
- dynamics: soft, a mean pitched velocity of at most 64; loud, at least 88; building, the last
  quarter of the notes at least 12 above the first quarter; fading, 12 below;
- drums, meter (exact "6/8", or its class), family (every pitched part in a General MIDI
  family), program and instrument (some part plays it), voices (a choir sings); key (the key
  signature) and bpm (the first tempo, within 0.5).

Key, bpm, named instruments, drums and a meter given as numbers are explicit values; the rest
are qualities. Every piece is also checked for a choir (General MIDI 52-54), which only a
request naming voices may get, and for its craft (composer.evaluate.craft) and notation
(composer.evaluate.notation). Videos given with ``videos`` are composed with no request and
checked for craft and notation only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import symusic

from composer.errors import ComposerError
from composer.evaluate.craft import Craft, measure_craft, pitched
from composer.music.keys import key_signature, parse_key
from composer.music.words import meter_class, tempo_class
from composer.outputs import atomic_write_text
from composer.paths import DEFAULT_LIBRARY, DEFAULT_MODEL
from composer.plan.palette import CHOIR
from composer.progress import ProgressFn, no_progress
from composer.types import Plan

TARGET = 0.90  # stated qualities met on the held-out half
EXPLICIT = ("key", "bpm", "instrument", "drums")
FAMILIES = {
    "strings": range(40, 52), "brass": range(56, 64), "winds": range(64, 80),
    "piano": range(0, 8), "guitar": range(24, 40),
}  # fmt: skip
SOFT, LOUD, SLOPE = 64.0, 88.0, 12.0


@dataclass
class Notation:
    parts: int
    signatures_in_every_part: bool
    measures_match_bars: bool
    tuplets: int
    lilypond_warnings: int | None  # None: LilyPond is not installed

    def ok(self) -> bool:
        return (
            self.signatures_in_every_part
            and self.measures_match_bars
            and self.tuplets == 0
            and not self.lilypond_warnings
        )


@dataclass
class Result:
    request: str  # the request, or the video's name
    style: str
    stated: dict[str, str]
    measured: dict[str, str]
    met: dict[str, bool]
    choir: bool  # a choir sings
    voices_asked: bool
    craft: Craft
    notation: Notation | None
    seconds: float


@dataclass
class RequestsReport:
    battery: str
    duration: float
    seed: int
    results: list[Result] = field(default_factory=list)

    def rate(self, explicit: bool) -> tuple[int, int]:
        """(met, stated) over the explicit values or over the qualities."""
        pairs = [ok for r in self.results for a, ok in r.met.items()
                 if _is_explicit(a, r.stated[a]) == explicit]  # fmt: skip
        return sum(pairs), len(pairs)

    def table(self) -> str:
        lines = [f"{'request':44s} {'style':9s} {'stated -> measured (x: missed)':60s}"]
        for r in self.results:
            said = " ".join(
                f"{a}={r.stated[a]}->{r.measured[a]}{'' if r.met[a] else ' x'}" for a in r.met
            )
            if r.choir and not r.voices_asked:
                said += " CHOIR x"
            lines.append(f"{r.request[:44]:44s} {r.style:9s} {said}")
        q_met, q_all = self.rate(False)
        e_met, e_all = self.rate(True)
        choirs = sum(r.choir and not r.voices_asked for r in self.results)
        lines += [
            "",
            f"stated qualities met: {q_met}/{q_all} ({q_met / max(q_all, 1):.0%}; target "
            f"{TARGET:.0%})",
            f"explicit values met: {e_met}/{e_all} ({e_met / max(e_all, 1):.0%}; target 100%)",
            f"choir without voices asked for: {choirs} of {len(self.results)}",
            "",
            self.craft_table(),
        ]
        return "\n".join(lines)

    def craft_table(self) -> str:
        head = (f"{'piece':44s} {'vel sd':>6s} {'accents (>=15)':>16s} {'last 1/2 beat':>13s} "
                f"{'final chord':>11s} {'end err':>8s} {'notation':>22s}")  # fmt: skip
        lines = [head]
        for r in self.results:
            c, n = r.craft, r.notation
            accents = ",".join(f"{a:.0f}" for a in c.accents) or "-"
            ly = "-" if n is None else (
                f"sig {'ok' if n.signatures_in_every_part else 'x'} bars "
                f"{'ok' if n.measures_match_bars else 'x'} tup {n.tuplets} ly "
                f"{'n/a' if n.lilypond_warnings is None else n.lilypond_warnings}"
            )  # fmt: skip
            lines.append(
                f"{r.request[:44]:44s} {c.velocity_sd:6.1f} {accents:>16s} "
                f"{'attack x' if c.attack_in_last_half_beat else 'none':>13s} "
                f"{c.shortest_final_chord:9.2f} b {c.end_error * 1000:6.0f}ms {ly:>22s}"
            )
        sds = [r.craft.velocity_sd for r in self.results]
        accents = [a for r in self.results for a in r.craft.accents]
        endings = sum(r.craft.ending_ok() for r in self.results)
        notation = [r.notation for r in self.results if r.notation is not None]
        warnings = [n.lilypond_warnings for n in notation if n.lilypond_warnings is not None]
        lines += [
            "",
            f"velocity sd: min {min(sds):.1f} (target >= 8); pieces below 8: "
            f"{sum(s < 8 for s in sds)}",
            f"strong cuts without drums accented >= 15: {sum(a >= 15 for a in accents)} of "
            f"{len(accents)}",
            f"endings right (no attack in the last half-beat, final chord >= 1 beat in every "
            f"part, end within 50 ms): {endings} of {len(self.results)}",
            f"notation right (signatures in every part, bar counts, no tuplets, no LilyPond "
            f"warnings): {sum(n.ok() for n in notation)} of {len(notation)}; LilyPond "
            f"warnings per file: {warnings if warnings else 'not run'}",
        ]
        return "\n".join(lines)


def read_battery(path: str | Path) -> list[tuple[str, dict[str, list[str]]]]:
    """(request, {attribute: [values]}) per line; an attribute may be stated more than once
    (two instruments), and a line without a tab states none."""
    out = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        request, _, stated = line.partition("\t")
        attrs: dict[str, list[str]] = {}
        for word in stated.split():
            if "=" in word:
                name, value = word.split("=", 1)
                attrs.setdefault(name, []).append(value)
            else:  # "key=D minor": a value of several words
                attrs[name][-1] += " " + word
        out.append((request, attrs))
    return out


def eval_requests(
    battery: str | Path | None,
    *,
    duration: float = 20.0,
    seed: int = 0,
    model: str | Path | None = None,
    videos: list[Path] = (),
    out: Path | None = None,
    notation: bool = True,
    progress: ProgressFn = no_progress,
) -> RequestsReport:
    """Compose every request of ``battery`` (and every video of ``videos``) into ``out`` (or a
    temporary folder) and measure what each stated."""
    import tempfile

    from composer.pipeline import compose

    if battery is None and not videos:
        raise ComposerError(None, "give a request battery, or videos, to evaluate")
    jobs = [(r, a, None) for r, a in (read_battery(battery) if battery else [])] + [
        (Path(v).name, {}, Path(v)) for v in videos
    ]
    report = RequestsReport(str(battery or "videos only"), duration, seed)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(out) if out else Path(scratch)
        for i, (request, stated, video) in enumerate(jobs):
            progress("eval requests", i, len(jobs))
            folder = root / f"{i:03d}"
            start = time.perf_counter()
            done = compose(video, "" if video else request, folder, duration=None if video
                           else duration, seed=seed, model=model, force=True)  # fmt: skip
            seconds = time.perf_counter() - start
            report.results.append(_measure(request, stated, done.files, done.record.plan,
                                           seconds, notation, folder))  # fmt: skip
        progress("eval requests", len(jobs), len(jobs))
    if out is not None:
        atomic_write_text(Path(out) / "requests.txt", report.table() + "\n")
        atomic_write_text(Path(out) / "requests.json", json.dumps(asdict(report), indent=1))
    return report


def _measure(request, stated, files, plan: Plan, seconds, notation, folder) -> Result:
    score = symusic.Score(str(files["score"]))
    parts = pitched(score)
    programs = sorted({t.program for t in parts})
    measured, met = {}, {}
    for attribute, values in stated.items():
        for k, value in enumerate(values):
            name = attribute if k == 0 else f"{attribute}#{k + 1}"
            got, ok = _check(attribute, value, score, parts, programs, plan)
            measured[name], met[name] = got, ok
    flat = {(a if k == 0 else f"{a}#{k + 1}"): v for a, vs in stated.items()
            for k, v in enumerate(vs)}  # fmt: skip
    return Result(
        request=request, style=plan.style.value, stated=flat, measured=measured, met=met,
        choir=any(p in CHOIR for p in programs), voices_asked="voices" in stated,
        craft=measure_craft(files["score"], plan),
        notation=_notation(files, score, folder) if notation else None,
        seconds=round(seconds, 1),
    )  # fmt: skip


def _is_explicit(attribute: str, value: str) -> bool:
    name = attribute.split("#")[0]
    return name in EXPLICIT or (name == "meter" and "/" in value)


def _check(attribute, value, score, parts, programs, plan: Plan) -> tuple[str, bool]:
    """(what the file has, whether it is what was stated)."""
    notes = sorted((n for t in parts for n in t.notes), key=lambda n: n.time)
    if attribute == "tempo":
        got = tempo_class(_mean_tempo(score))
    elif attribute == "bpm":
        bpm = score.tempos[0].qpm
        return f"{bpm:g}", abs(bpm - float(value)) <= 0.5
    elif attribute == "density":
        got = _classed(_density(score, parts), _density_tertiles()[plan.style.value],
                       ("sparse", "medium", "dense"))  # fmt: skip
    elif attribute == "register":
        melody = next((t for t in parts if t.name.startswith("melody")), parts[0])
        pitch = float(np.mean([n.pitch for n in melody.notes]))
        got = _classed(pitch, _register_tertiles(), ("low", "middle", "high"))
    elif attribute == "dynamics":
        v = np.array([n.velocity for n in notes], float)
        q = max(1, len(v) // 4)
        slope = float(v[-q:].mean() - v[:q].mean())
        mean = float(v.mean())
        ok = {"soft": mean <= SOFT, "loud": mean >= LOUD, "building": slope >= SLOPE,
              "fading": slope <= -SLOPE}[value]  # fmt: skip
        return f"mean {mean:.0f}, slope {slope:+.0f}", ok
    elif attribute == "drums":
        got = "yes" if any(t.is_drum and len(t.notes) for t in score.tracks) else "no"
    elif attribute == "meter":
        ts = score.time_signatures[0]
        got = f"{ts.numerator}/{ts.denominator}"
        if "/" not in value:
            got = meter_class(ts.numerator, ts.denominator) or got
    elif attribute == "family":
        inside = all(p in FAMILIES[value] for p in programs)
        return ",".join(map(str, programs)), inside
    elif attribute in ("program", "instrument"):
        return ",".join(map(str, programs)), int(value) in programs
    elif attribute == "voices":
        got = "yes" if any(p in CHOIR for p in programs) else "no"
    elif attribute == "key":
        ks = score.key_signatures[0]
        got_sig = (ks.key, ks.tonality)
        return f"{got_sig}", got_sig == key_signature(parse_key(value))
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    return got, got == value


def _mean_tempo(score: symusic.Score) -> float:
    """Quarter notes per minute over the piece: quarters played / minutes taken."""
    end_ticks = max(n.end for t in score.tracks for n in t.notes)
    seconds = score.to("second")
    end_seconds = max(n.end for t in seconds.tracks for n in t.notes)
    return end_ticks / score.ticks_per_quarter / end_seconds * 60.0


def _density(score: symusic.Score, parts) -> float:
    """Onsets per quarter note per part (chord notes in one part count once)."""
    quarters = max(n.end for t in parts for n in t.notes) / score.ticks_per_quarter
    onsets = sum(len({n.time for n in t.notes}) for t in parts)
    return onsets / quarters / len(parts)


def _classed(x: float, tertiles: tuple[float, float], names: tuple[str, str, str]) -> str:
    return names[0] if x < tertiles[0] else names[2] if x > tertiles[1] else names[1]


@lru_cache(maxsize=1)
def _density_tertiles() -> dict[str, tuple[float, float]]:
    """Per style: tertiles of notes per quarter per part over the shipped library's pieces."""
    from composer.retrieve.library import Library

    per: dict[str, list[float]] = {}
    for p in Library.open(DEFAULT_LIBRARY).pieces:
        num, den = (int(x) for x in p.meter.split("/"))
        if p.parts and p.bars:
            per.setdefault(p.style, []).append(p.density / (num * 4 / den) / p.parts)
    return {s: tuple(float(q) for q in np.quantile(v, [1 / 3, 2 / 3])) for s, v in per.items()}


@lru_cache(maxsize=1)
def _register_tertiles() -> tuple[float, float]:
    from composer.model.adapters import adapter_path

    meta = json.loads((adapter_path(DEFAULT_MODEL, "instruct") / "instruct.json").read_text())
    return tuple(meta["thresholds"]["register"])


def _notation(files, score, folder) -> Notation:
    from composer.evaluate.notation import lilypond_warnings, notation_facts

    facts = notation_facts(files["musicxml"])
    bars = _bars(score)
    warnings = lilypond_warnings(files["musicxml"], folder / ".lilypond")
    return Notation(
        parts=len(facts.parts),
        signatures_in_every_part=all(p.key_signature and p.time_signature for p in facts.parts),
        measures_match_bars=all(p.measures == bars for p in facts.parts),
        tuplets=sum(p.tuplets for p in facts.parts),
        lilypond_warnings=None if warnings is None else len(warnings),
    )


def _bars(score: symusic.Score) -> int:
    """Bars of the MIDI file: the time-signature map laid over its last note's end."""
    end = max(n.end for t in score.tracks if not t.is_drum for n in t.notes)
    tpq = score.ticks_per_quarter
    sigs = list(score.time_signatures) or [symusic.TimeSignature(0, 4, 4)]
    bars, t = 0, 0
    for i, ts in enumerate(sigs):
        stop = sigs[i + 1].time if i + 1 < len(sigs) else None
        length = ts.numerator * tpq * 4 // ts.denominator
        while t < end and (stop is None or t < stop):
            t += length
            bars += 1
    return bars
