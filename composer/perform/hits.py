"""Hit points (the video's strong cuts) in performance.

Every voice swells into a hit. Without drums to mark it, the pitched voices mark it
themselves: notes held through the hit are re-struck on it, a general pause on it is filled
with a short chord of what sounded just before, and every note on the hit is accented well
above the rest of its bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from composer.perform.grid import Grid, ticks_per_second
from composer.perform.notes import Notes
from composer.types import Plan

WINDOW = 0.05  # s: an onset this close to a hit is on it
CRESCENDO = 10.0  # velocity gained over the beat or two before a hit
# An accent stands ACCENT above its bar's mean velocity (the bar's notes, the accents among
# them). With k accented notes of n in the bar, that needs ACCENT * n / (n - k) above the other
# notes; a bar that is mostly the hit chord gets at most MAX_LIFT times ACCENT over the rest
# (a sforzando-piano: the accent, then the rest of the bar drops back).
ACCENT, MAX_LIFT = 20.0, 5.0
MIN_TAIL = 0.25  # beats: a held note ending sooner after the hit is not re-struck
TOP = 127.0


@dataclass(frozen=True)
class Hit:
    tick: int
    window: int  # ticks either side of ``tick`` (WINDOW at the local tempo)


def hits_of(plan: Plan, grid: Grid, tpq: int) -> list[Hit]:
    """The plan's hit points in ticks (from bar and beat, which the tempo was fitted to)."""
    return sorted(
        (
            Hit(
                h.bar * grid.bar_ticks + h.beat * grid.unit_ticks,
                max(1, int(WINDOW * ticks_per_second(plan, h.score_time, tpq))),
            )
            for h in plan.hit_points
        ),
        key=lambda h: h.tick,
    )


def crescendo(time: np.ndarray, hits: list[Hit], grid: Grid) -> np.ndarray:
    """Velocity added to onsets in the two beats (one dotted beat in compound meters) before
    each hit, rising from 0 to CRESCENDO."""
    span = grid.pulse_ticks * (1 if grid.compound else 2)
    out = np.zeros(len(time))
    for h in hits:
        into = (time >= h.tick - span) & (time < h.tick - h.window)
        out[into] = np.maximum(out[into], CRESCENDO * (time[into] - (h.tick - span) + 1) / span)
    return out


def restrike(notes: Notes, hits: list[Hit], grid: Grid) -> Notes:
    """Split notes held through a hit into two, so the hit is attacked; where nothing sounds
    on a hit, add a short chord of the notes that sounded in the beat before it."""
    for h in hits:
        end = notes.time + notes.duration
        held = (notes.time < h.tick - h.window) & (end > h.tick + MIN_TAIL * grid.pulse_ticks)
        on = np.abs(notes.time - h.tick) <= h.window
        sounding = (notes.time < h.tick) & (end > h.tick)
        if held.any():
            i = np.flatnonzero(held)
            tail = end[i] - h.tick
            notes.duration[i] = h.tick - notes.time[i]
            notes = notes.extend(
                np.full(len(i), h.tick), tail, notes.pitch[i], notes.velocity[i], notes.voice[i]
            )
        elif not on.any() and not sounding.any():
            notes = _fill_pause(notes, h, grid)
    return notes


def _fill_pause(notes: Notes, h: Hit, grid: Grid) -> Notes:
    """Each voice's last chord of the beat before ``h``, again on it, for at most a beat."""
    end = notes.time + notes.duration
    before = (notes.time < h.tick) & (end > h.tick - grid.pulse_ticks)
    picked: list[int] = []
    for v in np.unique(notes.voice[before]):
        mine = before & (notes.voice == v)
        picked += list(np.flatnonzero(mine & (notes.time == notes.time[mine].max())))
    if not picked:
        return notes  # silence for a whole beat before: the cut is left silent
    i = np.array(picked)
    length = np.full(len(i), grid.pulse_ticks)
    for j, v in enumerate(notes.voice[i]):
        later = notes.time[(notes.voice == v) & (notes.time > h.tick)]
        if len(later):
            length[j] = min(length[j], later.min() - h.tick)
    return notes.extend(np.full(len(i), h.tick), length, notes.pitch[i], notes.velocity[i],
                        notes.voice[i])  # fmt: skip


def accent(
    notes: Notes, velocity: np.ndarray, hits: list[Hit], grid: Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocities with every onset on a hit accented; also the accented notes and the notes
    of the hits' bars (masks). Where the accent would pass 127, the rest of its bar drops
    instead (the pull-back before a hit that lets it land)."""
    vel = velocity.copy()
    bars = grid.bar(notes.time)
    accented = np.zeros(len(notes), bool)
    in_hit_bars = np.zeros(len(notes), bool)
    for b in sorted({int(grid.bar(h.tick)) for h in hits}):
        acc = np.zeros(len(notes), bool)
        for h in hits:
            if grid.bar(h.tick) == b:
                acc |= np.abs(notes.time - h.tick) <= h.window
        if not acc.any():
            continue
        in_bar = (bars == b) | acc
        others = in_bar & ~acc & ~accented
        n, k = int(in_bar.sum()), int(acc.sum())
        if others.any():
            ref, lift = vel[others].mean(), ACCENT * min(n / (n - k), MAX_LIFT)
        else:  # the bar is only the hit: stand above the bar before (or after) it
            near = ((bars == b - 1) | (bars == b + 1)) & ~accented & ~acc
            ref = vel[near].mean() if near.any() else float(grid.level([b * grid.bar_ticks])[0])
            lift = ACCENT
        peak = ref + lift
        if peak > TOP:
            vel[others] -= peak - TOP
            peak = TOP
        vel[acc] = peak
        accented |= acc
        in_hit_bars |= in_bar
    return vel, accented, in_hit_bars
