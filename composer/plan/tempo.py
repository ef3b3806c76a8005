"""Tempo fitting: a tempo (or a gentle tempo map) that puts strong cuts on bar lines or beats.

The music starts with the video. A single tempo is searched first: every strong cut should fall
within ``tolerance`` of a beat, on a bar line where possible. Where one tempo cannot hold them
all, the cuts become anchors: between two anchors the music plays a whole number of beats, so
each segment has its own tempo, and each change is at most ``max_change`` (8%). A cut that no
gentle change can reach is left off the grid and reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from composer.types import TempoSegment

# A bar line this close to a time counts as on it: tempi are rounded to 0.001 bpm, which over
# hundreds of bars moves the last bar line by a few milliseconds.
_SLACK_S = 0.01


@dataclass
class TempoFit:
    """Where the beats fall: a tempo map from time 0 and each cut's place on the grid."""

    segments: list[TempoSegment]
    beats_per_bar: int
    cut_beats: dict[float, int] = field(default_factory=dict)  # cut time -> its beat index
    unplaced: list[float] = field(default_factory=list)  # cuts no gentle tempo could reach

    def time_of(self, beat: float) -> float:
        """Seconds at a (fractional) beat index."""
        seg = self.segments[0]
        for s in self.segments:
            if s.beat <= beat:
                seg = s
        return seg.start + (beat - seg.beat) * 60.0 / seg.bpm

    def beat_at(self, time: float) -> float:
        seg = self.segments[0]
        for s in self.segments:
            if s.start <= time:
                seg = s
        return seg.beat + (time - seg.start) * seg.bpm / 60.0

    def bars_for(self, duration: float) -> int:
        """Whole bars that cover ``duration`` seconds (the last may run a little past it)."""
        return max(1, math.ceil(self.beat_at(duration - _SLACK_S) / self.beats_per_bar))

    def whole_bars(self, duration: float) -> int:
        """Whole bars that end by ``duration`` (at least one)."""
        return max(1, math.floor(self.beat_at(duration + _SLACK_S) / self.beats_per_bar))

    @property
    def tempo(self) -> float:
        return self.segments[0].bpm


def _grid_error(cuts: np.ndarray, bpm: float, beats_per_bar: int) -> tuple[float, float]:
    """(worst distance of a cut to its nearest beat, in s; share of cuts on bar lines)."""
    beats = cuts * bpm / 60.0
    nearest = np.round(beats)
    err = np.abs(beats - nearest) * 60.0 / bpm
    on_bar = np.mean(nearest % beats_per_bar == 0) if len(cuts) else 1.0
    return float(err.max()) if len(cuts) else 0.0, float(on_bar)


def fit_tempo(
    cuts: list[float],
    tempo_range: tuple[float, float],
    beats_per_bar: int,
    *,
    tolerance: float = 0.02,
    max_change: float = 0.08,
    end: float | None = None,
) -> TempoFit:
    """A tempo map in ``tempo_range`` (bpm) putting each cut on a bar line, else on a beat.

    In order of preference: one tempo with every cut on a bar line; a map whose segments
    between cuts are whole bars; one tempo with every cut on a beat; a map of whole beats.
    With ``end`` (seconds), the last segment's tempo is eased (one gentle change) so that the
    music's last bar line falls on it.
    """
    fit = _fit(cuts, tempo_range, beats_per_bar, tolerance, max_change)
    return _fit_end(fit, end, max_change) if end else fit


def _fit_end(fit: TempoFit, end: float, max_change: float) -> TempoFit:
    """Ease the tempo after the last placed cut so that a bar line falls at ``end`` (if one
    gentle change allows it); the cuts keep their places."""
    last = fit.segments[-1]
    # The change starts at the last cut on the grid (or the last segment, if that is later).
    start, beat = last.start, last.beat
    if fit.cut_beats:
        cut = max(fit.cut_beats)
        if cut > start:
            start, beat = cut, float(fit.cut_beats[cut])
    span = end - start
    if span <= 0:
        return fit
    ideal = span * last.bpm / 60.0
    options = []
    for bars_end in (math.floor, math.ceil):
        n = bars_end((beat + ideal) / fit.beats_per_bar) * fit.beats_per_bar - beat
        if n >= 1:
            t = n * 60.0 / span
            if abs(t / last.bpm - 1) <= max_change:
                options.append((abs(t / last.bpm - 1), t))
    if options:
        eased = TempoSegment(start, beat, round(float(min(options)[1]), 3))
        if start == last.start:
            fit.segments[-1] = eased
        else:
            fit.segments.append(eased)
    return fit


def _fit(
    cuts: list[float],
    tempo_range: tuple[float, float],
    beats_per_bar: int,
    tolerance: float,
    max_change: float,
) -> TempoFit:
    lo, hi = tempo_range
    cuts_a = np.asarray(sorted(c for c in cuts if c > 0.25), dtype=np.float64)
    best = None
    for bpm in np.arange(lo, hi + 1e-9, 0.05):
        err, on_bar = _grid_error(cuts_a, bpm, beats_per_bar)
        key = (err > tolerance, -on_bar, round(err / 0.005), abs(bpm - (lo + hi) / 2))
        if best is None or key < best[0]:
            best = (key, round(float(bpm), 3))
    (missed, neg_on_bar, _, _), bpm = best
    single = TempoFit(
        [TempoSegment(0.0, 0.0, bpm)],
        beats_per_bar,
        {float(c): int(round(c * bpm / 60.0)) for c in cuts_a},
    )
    if not missed and neg_on_bar == -1.0:
        return single
    centre = (lo + hi) / 2
    bars = _walk(cuts_a, centre, (lo, hi), beats_per_bar, max_change, bars_only=True)
    if not bars.unplaced:
        return bars
    if not missed:
        return single
    beats = _walk(cuts_a, bpm, (lo, hi), beats_per_bar, max_change, bars_only=False)
    if beats.unplaced:
        # A cut is where a listener expects the music to turn, so a firmer tempo change at a
        # cut beats leaving a cut off the grid: try again with twice the change allowed.
        firmer = _walk(cuts_a, bpm, (lo, hi), beats_per_bar, 2 * max_change, bars_only=False)
        if len(firmer.unplaced) < len(beats.unplaced):
            return firmer
    return beats


# Beam search costs: a cut left off the grid, a cut on a beat rather than a bar line, and
# each 1% of distance from the base tempo.
_SKIP, _OFF_BAR, _PER_PERCENT = 100.0, 1.0, 0.1


def _walk(
    cuts: np.ndarray,
    bpm: float,
    tempo_range: tuple[float, float],
    beats_per_bar: int,
    max_change: float,
    bars_only: bool,
    beam: int = 32,
) -> TempoFit:
    """Give each segment between cuts a whole number of beats (or bars) near ``bpm``, each
    tempo change gentle; a beam search over the choices, so no early choice corners a later
    cut. A state is (cost, beat, segment start, last tempo, segments, placed, unplaced)."""
    lo, hi = tempo_range
    states = [(0.0, 0, 0.0, None, (), (), ())]
    for c in cuts:
        nxt = []
        for cost, beat, start, prev, segs, placed, unplaced in states:
            # Leaving this cut off the grid is always possible, at a price.
            nxt.append((cost + _SKIP, beat, start, prev, segs, placed, unplaced + (float(c),)))
            span = c - start
            ideal = span * bpm / 60.0
            counts = _bar_counts(beat, ideal, beats_per_bar)
            if not bars_only:
                counts |= {math.floor(ideal), math.ceil(ideal)}
            if prev is not None:  # also the counts nearest the current tempo
                near = span * prev / 60.0
                counts |= _bar_counts(beat, near, beats_per_bar)
                if not bars_only:
                    counts |= {math.floor(near), math.ceil(near)}
            for n in counts:
                if n < 1:
                    continue
                t = n * 60.0 / span
                if prev is not None and abs(t / prev - 1) > max_change:
                    continue
                if not lo * (1 - max_change) <= t <= hi * (1 + max_change):
                    continue
                step = _OFF_BAR * ((beat + n) % beats_per_bar != 0)
                step += _PER_PERCENT * 100 * abs(t / bpm - 1)
                seg = TempoSegment(start, float(beat), round(float(t), 3))
                nxt.append(
                    (cost + step, beat + n, float(c), t, segs + (seg,),
                     placed + ((float(c), beat + n),), unplaced)
                )  # fmt: skip
        nxt.sort(key=lambda st: st[0])
        states = nxt[:beam]
    _, beat, start, prev, segs, placed, unplaced = states[0]
    # After the last cut, ease back to the base tempo if one gentle change allows it.
    prev = prev or bpm
    tail = bpm if abs(bpm / prev - 1) <= max_change else prev
    segments = [*segs, TempoSegment(start, float(beat), round(float(tail), 3))]
    return TempoFit(_merge(segments), beats_per_bar, dict(placed), list(unplaced))


def _bar_counts(beat: int, ideal: float, beats_per_bar: int) -> set[int]:
    """Beat counts near ``ideal`` that end on a bar line."""
    out = set()
    for target in (math.floor, math.ceil):
        end = target((beat + ideal) / beats_per_bar) * beats_per_bar
        out.add(int(end - beat))
    return out


def _merge(segments: list[TempoSegment]) -> list[TempoSegment]:
    out = [segments[0]]
    for s in segments[1:]:
        if abs(s.bpm - out[-1].bpm) < 1e-6:
            continue
        out.append(s)
    return out
