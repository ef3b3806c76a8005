"""A new tempo for a scored video's music, fitted again to the video's cuts.

The plan put each cut on a beat. With the cuts fixed in the video and the beats between them
fixed, so is the tempo between them: a new tempo needs a new number of beats between cuts. So
the music is conformed as film music is to a recut picture: in each stretch between two cuts
the whole number of bars is chosen whose tempo comes nearest the one asked for, and that many
bars are dropped or played again. Whole bars keep each cut on its beat within the bar, so the
accents written for it (crash, timpani) still meet it. After the last cut the tempo is the one
asked for, with the most whole bars that end by the video's end and the last chord held to it,
as compose does with a tempo asked for in words.

Where the bars go: a run of bars is dropped (or repeated) where the seam it leaves joins two bars
that sound alike: the bar after a dropped run sounds like the run's first bar (and a repeated
run's first bar like the bar that follows it), so the music goes on as though written that way.
A run keeps inside one phrase of the form or takes whole phrases. The bar a stretch starts on
(its cut, or the first bar) and the score's last bar are never dropped or repeated. The plan's
bar grid, tempo map, hit points and form follow the bars; the markers are written again from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import symusic

from composer.arrange.arranger import beat_at, markers, tempo_events
from composer.config import tempo_problem
from composer.errors import ComposerError
from composer.music.harmony import window_weights
from composer.music.midi import bar_lines
from composer.plan.tempo import TempoFit
from composer.types import BarPlan, Choice, Form, HitPoint, Phrase, Plan, TempoSegment


@dataclass(frozen=True)
class Stretch:
    """The music from a fixed time (the start, a cut) to the next cut, or to the video's end."""

    start: float  # seconds
    seconds: float
    beat: float  # the beat (in the meter's unit) at ``start``, before the edit
    beats: float  # beats to the next cut (the last stretch: to the last bar line), before it
    first: int  # bars [first, end) may be dropped or repeated
    end: int
    last: bool  # the stretch to the video's end
    change: int = 0  # bars added (+) or dropped (-)
    run: int | None = None  # the first bar of the run dropped or repeated
    tempo: float = 0.0  # after the edit, in the meter's beats per minute
    num: int = 4  # beats per bar


@dataclass
class Conformed:
    """The score at the new tempo, its plan, one line saying what moved, and the stretches
    (each with the bars it dropped or repeated)."""

    score: symusic.Score
    plan: Plan
    note: str
    stretches: list[Stretch]


def fits(score: symusic.Score, plan: Plan) -> bool:
    """Whether ``score`` is laid on ``plan``'s bars (one meter, the plan's), as composer wrote it;
    only then can bars be matched to the cuts."""
    num, den = plan.meter.value
    signatures = {(t.numerator, t.denominator) for t in score.time_signatures}
    bars = len(bar_lines(score)) - 1
    return signatures == {(num, den)} and len(plan.bars) <= bars <= len(plan.bars) + 1


def conform(score: symusic.Score, plan: Plan, bpm: float) -> Conformed:
    """``score`` (laid on ``plan``'s bars: :func:`fits`) with bars dropped or repeated between
    the video's cuts so that the tempo comes nearest ``bpm`` (quarter notes per minute) while
    every cut keeps its beat and the music still ends with the video."""
    if why := tempo_problem(bpm):
        raise ComposerError(None, f"cannot set the tempo: {why}")
    num, den = plan.meter.value
    unit = den / 4  # meter beats per quarter note
    lines = bar_lines(score)
    unit_ticks = score.ticks_per_quarter * 4 // den
    line = len(plan.bars) * num * unit_ticks
    # A final chord struck on the last bar line needs a beat (or what it had) before the end.
    struck = [n.end - line for n in _ending(score, line)[0]]
    tail = min(1.0, max([0, *struck]) / unit_ticks)
    stretches = [_changed(s, bpm * unit, unit, tail) for s in _stretches(plan, len(lines) - 1)]
    # Nothing moves where no bar does and each stretch plays the beats it played.
    if not any(s.change for s in stretches) and all(
        abs(s.tempo * s.seconds / 60 - (beat_at(plan, s.start + s.seconds) - s.beat)) < 1e-3
        for s in stretches
    ):
        raise ComposerError(None, f"cannot move the tempo nearer {bpm:g} bpm: the video's cuts "
                                  "hold the music at the tempo it has, and no bar dropped or "
                                  "repeated between them comes nearer")  # fmt: skip
    chroma = bar_chroma(score, lines)
    starts = {p.start for p in plan.form.phrases} if plan.form else set()
    stretches = [_placed(s, chroma, starts) for s in stretches]
    order = _order(stretches, len(lines) - 1)
    new_plan = _plan(plan, stretches, order, bpm)
    out = rebar(score, order)
    out.tempos = tempo_events(new_plan, unit_ticks)
    out.markers = markers(new_plan, num * unit_ticks, unit_ticks)
    _hold(out, len(new_plan.bars) * num * unit_ticks,
          round(beat_at(new_plan, new_plan.duration.value) * unit_ticks))  # fmt: skip
    return Conformed(out, new_plan, _note(bpm, stretches, new_plan), stretches)


def _hold(score: symusic.Score, line: int, end: int) -> None:
    """The final chord held from the last bar line ``line`` to ``end`` (the video's end), as the
    arranger holds it (composer.arrange.ending)."""
    struck, across = _ending(score, line)
    for n in struck or across:
        n.duration = max(1, max(line, end) - n.time)


def _ending(score: symusic.Score, line: int) -> tuple[list, list]:
    """The pitched notes of the ending: those struck on or after the last bar line ``line``, or
    held past it (a chord held to the video's end); else those sounding up to it."""
    early = score.ticks_per_quarter // 8
    past, to = [], []
    for t in score.tracks:
        if t.is_drum:
            continue
        for n in t.notes:
            if n.time >= line - early or n.end > line + early:
                past.append(n)
            elif n.end >= line - early:
                to.append(n)
    return past, to


def _stretches(plan: Plan, bars: int) -> list[Stretch]:
    """The stretches between the plan's cuts, the start and the video's end."""
    num = plan.meter.value[0]
    # The last stretch counts to the last bar line: a chord held past it is not a bar.
    fixed, ending = [(0.0, 0.0)], float(len(plan.bars) * num)
    for h in sorted(plan.hit_points, key=lambda h: h.time):
        beat = h.bar * num + h.beat
        if h.kind == "cut" and fixed[-1][1] < beat < ending and h.time < plan.duration.value:
            fixed.append((h.time, float(beat)))
    fixed.append((plan.duration.value, ending))
    last = min(bars, len(plan.bars)) - 1  # the plan's final bar (its cadence) stays
    out = []
    for k, ((t0, b0), (t1, b1)) in enumerate(pairwise(fixed)):
        final = k == len(fixed) - 2
        end = last if final else int(b1 // num)
        out.append(Stretch(t0, t1 - t0, b0, b1 - b0, int(b0 // num) + 1, max(end, 0), final,
                           num=num))  # fmt: skip
    return out


def _changed(s: Stretch, target: float, unit: float, tail: float) -> Stretch:
    """``s`` with whole bars added or dropped (at most as many as may change) and its tempo
    (meter beats per minute): between cuts, the playable tempo nearest ``target``; after the
    last, ``target`` with the most bars that end, with ``tail`` beats of final chord, by the
    video's end (where even the fewest run past it, the fewest, a little faster, to end on it)."""
    room = max(0, s.end - s.first)
    changes = [c for c in range(-room, room + 1) if s.beats + c * s.num > 0]
    if s.seconds <= 0 or not changes:
        return dataclasses.replace(s, tempo=target)
    need = tail if s.last else 0.0
    if s.last:
        fit = [c for c in changes
               if (s.beats + c * s.num + need) * 60 / target <= s.seconds + 0.01]  # fmt: skip
        if fit:
            return dataclasses.replace(s, change=max(fit), tempo=target)
        changes = changes[:1]
    options = []
    for change in changes:
        tempo = (s.beats + change * s.num + need) * 60 / s.seconds
        if tempo_problem(tempo / unit) is None:
            options.append((abs(tempo / target - 1), abs(change), change, tempo))
    if not options:  # no count is playable here: the stretch stays as it was
        return dataclasses.replace(s, tempo=s.beats * 60 / s.seconds)
    _, _, change, tempo = min(options)
    return dataclasses.replace(s, change=change, tempo=tempo)


def _placed(s: Stretch, chroma: np.ndarray, phrase_starts: set[int]) -> Stretch:
    """Where in ``s`` its bars are dropped or repeated: the run of ``|s.change|`` bars whose
    first bar sounds most like the bar after the run (cosine of their pitch-class weights),
    inside one phrase or whole phrases, a phrase's start preferred."""
    k = abs(s.change)
    if not k:
        return s
    best = None
    for first in range(s.first, s.end - k + 1):
        inside = [p for p in phrase_starts if first < p < first + k]
        whole = first in phrase_starts and first + k in phrase_starts
        score = cosine(chroma[first], chroma[first + k]) + 0.1 * (first in phrase_starts)
        score -= 1.0 * bool(inside and not whole)
        if best is None or score > best[0] + 1e-9:
            best = (score, first)
    return dataclasses.replace(s, run=best[1])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0  # two rests sound alike
    return float(a @ b) / (na * nb)


def bar_chroma(score: symusic.Score, lines: list[int]) -> np.ndarray:
    """(bars, 12): each bar's sounding time per pitch class, over the pitched tracks."""
    return window_weights(score, range(len(score.tracks)), lines)


def _order(stretches: list[Stretch], bars: int) -> list[int]:
    """The old bar each new bar plays: the dropped runs left out, the repeated ones twice."""
    dropped, repeat = set(), {}
    for s in stretches:
        if s.change < 0:
            dropped |= set(range(s.run, s.run - s.change))
        elif s.change > 0:
            repeat[s.run + s.change - 1] = range(s.run, s.run + s.change)
    order = []
    for b in range(bars):
        if b not in dropped:
            order += [b, *repeat.get(b, ())]
    return order


def rebar(score: symusic.Score, order: list[int]) -> symusic.Score:
    """``score`` with new bar j playing old bar ``order[j]``: every track's notes, controllers,
    bends, pedal and lyrics, and the key and time signatures, moved with their bars. An event
    belongs to the bar its onset falls in (a 32nd early counts as on time, as a performance
    plays); a note held past its bar is cut where the next new bar is not the old next bar."""
    lines = bar_lines(score)
    lengths = np.diff(lines)
    starts = np.concatenate([[0], np.cumsum(lengths[order])]).astype(np.int64)
    # Where each new bar's stretch of consecutive old bars ends, in new ticks.
    run_end = starts[1:].copy()
    for j in range(len(order) - 2, -1, -1):
        if order[j + 1] == order[j] + 1:
            run_end[j] = run_end[j + 1]
    places: dict[int, list[int]] = {}
    for j, b in enumerate(order):
        places.setdefault(b, []).append(j)
    early = score.ticks_per_quarter // 8
    edges = np.asarray(lines[:-1])

    def moved(events, timed: bool):
        out = []
        for e in events:
            b = min(
                max(int(np.searchsorted(edges, e.time + early, "right")) - 1, 0), len(edges) - 1
            )
            for j in places.get(b, ()):
                c = e.copy()
                c.time = max(0, int(starts[j] + e.time - lines[b]))
                if timed:
                    c.duration = max(1, min(int(e.duration), int(run_end[j]) - c.time))
                out.append(c)
        return sorted(out, key=lambda c: c.time)

    out = score.copy()
    for t in out.tracks:
        t.notes = moved(t.notes, True)
        t.pedals = moved(t.pedals, True)
        t.controls = moved(t.controls, False)
        t.pitch_bends = moved(t.pitch_bends, False)
        t.lyrics = moved(t.lyrics, False)
    out.key_signatures = _first_each(moved(score.key_signatures, False))
    out.time_signatures = _first_each(moved(score.time_signatures, False))
    return out


def _first_each(events: list) -> list:
    """One event per tick (a repeated bar brings its signature twice)."""
    out = []
    for e in events:
        if not out or e.time != out[-1].time:
            out.append(e)
    return out


def _plan(plan: Plan, stretches: list[Stretch], order: list[int], bpm: float) -> Plan:
    """``plan`` on the new bars: each stretch at its new tempo from its fixed time, each cut at
    its new bar (same beat), the bars' controls and the form carried with the bars."""
    num, den = plan.meter.value
    unit = den / 4
    shift, segments = 0, []
    for s in stretches:
        segments.append(TempoSegment(s.start, s.beat + shift * num, round(s.tempo / unit, 3)))
        shift += s.change
    merged = [segments[0]]
    for seg in segments[1:]:
        if abs(seg.bpm - merged[-1].bpm) > 1e-6:
            merged.append(seg)
    new_index = {}
    for j, b in enumerate(order):
        new_index.setdefault(b, j)
    grid = TempoFit([dataclasses.replace(s, bpm=s.bpm * unit) for s in merged], num)

    def time_at(beat: float) -> float:
        return round(grid.time_of(beat), 4)

    bars = []
    for j, b in enumerate(order):
        if b >= len(plan.bars):
            continue
        old, again = plan.bars[b], new_index[b] != j
        bars.append(BarPlan(len(bars), time_at(len(bars) * num), old.intensity,
                            None if again else old.hit, old.section and not again,
                            None if again else old.cut))  # fmt: skip
    hits = [HitPoint(h.time, h.kind, new_index[h.bar], h.beat,
                     time_at(new_index[h.bar] * num + h.beat), h.downbeat)
            for h in plan.hit_points]  # fmt: skip
    lo, hi = min(s.bpm for s in merged), max(s.bpm for s in merged)
    tempo = Choice(merged[0].bpm, "prompt", f"{bpm:g} bpm asked for in an edit; the video's cuts "
                   f"hold the music at {_range([lo, hi])} bpm")  # fmt: skip
    return dataclasses.replace(plan, tempo=tempo, tempo_map=merged, bars=bars, hit_points=hits,
                               form=_form(plan.form, order, new_index, len(bars)))  # fmt: skip


def _form(form: Form | None, order: list[int], new_index: dict[int, int], bars: int) -> Form | None:
    """The phrases and sections on the new bars: each new bar in the part its old bar was in,
    a part cut in two where a repeated run crosses its end."""
    if form is None:
        return None

    def spans(parts):
        found = []  # (part, first new bar, bars)
        for j, b in enumerate(order[:bars]):
            k = next((i for i, p in enumerate(parts) if p.start <= b < p.start + p.bars), None)
            if k is None:
                continue
            if found and found[-1][0] == k and found[-1][1] + found[-1][2] == j:
                found[-1] = (k, found[-1][1], found[-1][2] + 1)
            else:
                found.append((k, j, 1))
        return [(parts[k], start, n) for k, start, n in found]

    phrases = [Phrase(start, n, p.label, new_index.get(p.source) if p.source is not None
                      else None, min(p.exact, n))
               for p, start, n in spans(form.phrases)]  # fmt: skip
    sections = [dataclasses.replace(s, start=start, bars=n) for s, start, n in spans(form.sections)]
    return Form(phrases, sections)


def _range(values: list[float]) -> str:
    lo, hi = round(min(values), 1), round(max(values), 1)
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def _note(bpm: float, stretches: list[Stretch], plan: Plan) -> str:
    """One line: the tempi, which bars (numbered as they were) moved, the chord held."""
    unit = plan.meter.value[1] / 4
    moves = []
    for s in stretches:
        if s.change < 0:
            moves.append(f"{_bars(s.run, -s.change)} dropped")
        elif s.change > 0:
            moves.append(f"{_bars(s.run, s.change)} played twice")
    between = [s.tempo / unit for s in stretches if not s.last]
    parts = [f"--tempo {bpm:g}: {stretches[-1].tempo / unit:g} bpm"
             + (" after the last cut" if between else "")]  # fmt: skip
    if between:
        parts.append(f"{_range(between)} bpm between the cuts, so each keeps its beat")
    parts.append(", ".join(moves) or "no bar dropped or repeated")
    held = plan.duration.value - plan.bars[-1].start - _bar_seconds(plan)
    if held > 0.05:
        parts.append(f"the last chord held {held:.1f} s to the video's end")
    return "; ".join(parts)


def _bar_seconds(plan: Plan) -> float:
    """The length of the plan's last bar, in seconds."""
    num, den = plan.meter.value
    return num * 60 / (plan.tempo_map[-1].bpm * den / 4)


def _bars(first: int, n: int) -> str:
    return f"bar {first + 1}" if n == 1 else f"bars {first + 1}-{first + n}"
