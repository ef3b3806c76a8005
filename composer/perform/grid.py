"""The plan's time grid in ticks: bars, beats, phrases and the base dynamic level.

Bars are uniform in ticks (bar b starts at ``b * bar_ticks``); the tempo map only says how long
a tick lasts. Everything here is vectorised over arrays of note onsets (ticks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from composer.music.words import meter_class, pulse_ticks
from composer.types import Plan

# Base velocity of each stated dynamic; "building" and "fading" ramp between soft and loud.
LEVELS = {"soft": 50.0, "medium": 76.0, "loud": 102.0}
RAMPS = {"building": ("soft", "loud"), "fading": ("loud", "soft")}
# Phrases: 4 bars from each section start; 2 bars when a bar lasts LONG_BAR s or more (slow
# 4/4, 12/8), so that a phrase stays a breath long (about 6-16 s) rather than half a minute.
PHRASE_BARS, LONG_PHRASE_BARS, LONG_BAR = 4, 2, 4.0
PHRASE_PEAK = 0.65  # where the arch crests, as a share of the phrase
# Metric weight (velocity): the bar's first beat, its secondary strong beat (3 in 4/4, 4 in
# 6/8), other beats, eighths inside a compound beat, and anything off the beat.
STRONG, SECONDARY, BEAT, INNER, OFFBEAT = 6.0, 3.0, 0.0, -1.5, -3.0
ON_BEAT = 1 / 12  # an onset this close to a beat (share of the beat) counts as on it


@dataclass(frozen=True)
class Grid:
    """Bars, beats and phrases of a plan, in the score's ticks."""

    num: int
    unit_ticks: int  # ticks per beat of the meter's unit (an eighth in 6/8)
    pulse_ticks: int  # ticks per felt beat (the dotted quarter in 6/8, 9/8, 12/8)
    bar_ticks: int
    length: int  # ticks the plan's bars span
    phrase_starts: np.ndarray  # ticks, ascending, the first 0
    intensity: np.ndarray  # per bar, 0..3
    dynamics: str
    compound: bool

    @classmethod
    def of(cls, plan: Plan, tpq: int) -> Grid:
        num, den = plan.meter.value
        unit_ticks = tpq * 4 // den
        compound = meter_class(num, den) == "compound"
        bars = plan.bars or []
        bar_seconds = num * (4 / den) * 60.0 / float(plan.tempo.value)
        group = LONG_PHRASE_BARS if bar_seconds >= LONG_BAR else PHRASE_BARS
        starts, last = [], -group
        for i, bar in enumerate(bars):
            if i == 0 or bar.section or i - last >= group:
                starts.append(i)
                last = i
        intensity = np.array([b.intensity for b in bars] or [1], dtype=float)
        return cls(
            num=num, unit_ticks=unit_ticks, pulse_ticks=pulse_ticks(num, den, tpq),
            bar_ticks=num * unit_ticks, length=max(1, len(bars)) * num * unit_ticks,
            phrase_starts=np.array(starts or [0], dtype=np.int64) * num * unit_ticks,
            intensity=intensity, dynamics=str(plan.dynamics.value), compound=compound,
        )  # fmt: skip

    def bar(self, ticks: np.ndarray) -> np.ndarray:
        """The plan's bar of each onset (notes held past the last bar line belong to it)."""
        return np.clip(np.asarray(ticks) // self.bar_ticks, 0, len(self.intensity) - 1)

    def level(self, ticks: np.ndarray) -> np.ndarray:
        """The base velocity at each onset: the stated dynamic, or its ramp over the piece."""
        ticks = np.asarray(ticks, dtype=float)
        if self.dynamics in RAMPS:
            lo, hi = (LEVELS[d] for d in RAMPS[self.dynamics])
            return lo + (hi - lo) * np.clip(ticks / self.length, 0.0, 1.0)
        return np.full(ticks.shape, LEVELS.get(self.dynamics, LEVELS["medium"]))

    def arch(self, ticks: np.ndarray) -> np.ndarray:
        """-1..1 over each phrase: from -1 at its start up to 1 at PHRASE_PEAK, back to -1."""
        ticks = np.asarray(ticks, dtype=float)
        i = np.searchsorted(self.phrase_starts, ticks, side="right") - 1
        ends = np.append(self.phrase_starts[1:], max(self.length, int(self.phrase_starts[-1]) + 1))
        start, end = self.phrase_starts[i], ends[i]
        x = np.clip((ticks - start) / (end - start), 0.0, 1.0)
        return np.where(
            x < PHRASE_PEAK, -1 + 2 * x / PHRASE_PEAK, 1 - 2 * (x - PHRASE_PEAK) / (1 - PHRASE_PEAK)
        )

    def metric(self, ticks: np.ndarray) -> np.ndarray:
        """The metric weight (velocity) of each onset's place in its bar."""
        in_bar = np.asarray(ticks) % self.bar_ticks
        frac = in_bar / self.unit_ticks
        beat = np.rint(frac).astype(np.int64) % self.num
        on = np.abs(frac - np.rint(frac)) <= ON_BEAT
        if self.compound:
            secondary = beat % 3 == 0
            other = INNER
        else:
            secondary = (beat == self.num // 2) if self.num >= 4 and self.num % 2 == 0 else False
            other = BEAT
        weight = np.where(secondary, SECONDARY, other)
        weight = np.where(beat == 0, STRONG, weight)
        return np.where(on, weight, OFFBEAT)


def ticks_per_second(plan: Plan, seconds: float, tpq: int) -> float:
    """The score's ticks per second at ``seconds``, from the plan's tempo map (quarter bpm)."""
    bpm = float(plan.tempo.value)
    for seg in plan.tempo_map:
        if seg.start <= seconds or seg is plan.tempo_map[0]:
            bpm = float(seg.bpm)
    return bpm / 60.0 * tpq
