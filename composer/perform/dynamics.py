"""Stage 7, perform: velocities and expression as a player would shape them.

A pitched note's velocity is the sum of
- the plan's dynamic level (soft 50, medium 76, loud 102; "building" and "fading" ramp between
  soft and loud over the piece),
- a phrase arch (±ARCH: phrases of 4 bars from each section start, 2 where a bar lasts 4 s
  or more, cresting at 65%; see ``composer.perform.grid``),
- the metric weight of its place in the bar (+6 the first beat, +3 the secondary strong beat,
  less off the beat),
- the bar's intensity (INTENSITY[0..3]), MELODY_LIFT for the melody so it carries,
- a crescendo into each hit point, and ±HUMAN of seeded jitter;
then spread to at least MIN_SPREAD standard deviation, held to the stated dynamic's mean,
and, without drums, accented on every hit (see ``composer.perform.hits``). Drums keep their
grooves, scaled to the level; sustained instruments get CC11 swells along the phrases.
"""

from __future__ import annotations

import numpy as np
import symusic

from composer.arrange.arranger import HITS_TRACK
from composer.perform.expression import EXPRESSION, sustains, swell
from composer.perform.grid import LEVELS, Grid
from composer.perform.hits import accent, crescendo, hits_of, restrike
from composer.perform.notes import Notes
from composer.types import Plan

ARCH = 10.0  # velocity either side of the phrase's mean
INTENSITY = (-8.0, -2.0, 4.0, 10.0)  # velocity added by the bar's intensity 0..3
MELODY_LIFT = 5.0
HUMAN = 2  # velocity: the seeded jitter is -HUMAN..HUMAN
MIN_SPREAD = 9.0  # velocity standard deviation a piece keeps (8 is asked; 1 spare)
# Where the piece's mean pitched velocity is held for each stated level.
MEAN_BOUNDS = {"soft": (42.0, 57.0), "medium": (68.0, 82.0), "loud": (95.0, 106.0)}
PERCUSSION_LEVEL = LEVELS["medium"]  # the level the arranger's grooves are written at
TOP = 127.0


def perform(score: symusic.Score, plan: Plan) -> symusic.Score:
    """A new score: ``score`` (the arranged one) played with ``plan``'s dynamics."""
    tpq = score.ticks_per_quarter
    grid = Grid.of(plan, tpq)
    out = score.copy(deep=True)
    kit = [t for t in out.tracks if _percussion(t)]
    voices = [t for t in out.tracks if not _percussion(t)]
    notes = Notes.gather(voices)
    hits = hits_of(plan, grid, tpq)
    marked = bool(hits) and not plan.drums.value and len(notes) > 0
    if marked:
        notes = restrike(notes, hits, grid)
    melody = np.array([t.name.startswith("melody") for t in voices] or [False])
    rng = np.random.default_rng(plan.seed)
    vel = (
        grid.level(notes.time)
        + ARCH * grid.arch(notes.time)
        + grid.metric(notes.time)
        + np.asarray(INTENSITY)[np.clip(grid.intensity[grid.bar(notes.time)], 0, 3).astype(int)]
        + MELODY_LIFT * melody[notes.voice]
        + crescendo(notes.time, hits, grid)
        + rng.integers(-HUMAN, HUMAN + 1, len(notes))
    )
    # Clamping at 127 (or 1) narrows the spread again: stretch and re-hold a few rounds.
    for _ in range(4):
        vel = _hold_mean(_spread(vel), grid.dynamics, np.ones(len(vel), bool))
        if len(vel) < 2 or vel.std() >= MIN_SPREAD - 0.1:
            break
    if marked:
        vel, accented, hit_bars = accent(notes, vel, hits, grid)
        # Accents lift the mean and the room made for them lowers it: move only notes whose
        # move keeps every accent above its bar.
        rise = vel.mean() < MEAN_BOUNDS.get(grid.dynamics, (0.0, TOP))[0]
        vel = _hold_mean(vel, grid.dynamics, ~hit_bars if rise else ~accented)
    notes.write(voices, vel)
    for t in kit:
        _scale(t, grid)
    for t in voices:
        if sustains(t.program) and len(t.notes):
            t.controls = [c for c in t.controls if c.number != EXPRESSION]
            t.controls.extend(swell(grid, t.end()))
            t.controls.sort(key=lambda c: c.time)
    return out


def _percussion(track: symusic.Track) -> bool:
    return track.is_drum or track.name.startswith(HITS_TRACK)


def _spread(vel: np.ndarray) -> np.ndarray:
    """Deviations from the mean stretched so their standard deviation is MIN_SPREAD at least."""
    sd = float(vel.std()) if len(vel) > 1 else 0.0
    if 0 < sd < MIN_SPREAD:
        vel = vel.mean() + (vel - vel.mean()) * (MIN_SPREAD / sd)
    return vel


def _hold_mean(vel: np.ndarray, dynamics: str, movable: np.ndarray) -> np.ndarray:
    """``vel`` clamped to 1..127, the ``movable`` notes shifted so the mean is within the stated
    level's bounds (a few rounds, as clamping gives some of the shift back)."""
    vel = np.clip(vel, 1, TOP)
    bounds = MEAN_BOUNDS.get(dynamics)
    if bounds is None or not movable.any():
        return vel
    for _ in range(4):
        mean = float(vel.mean())
        gap = float(np.clip(mean, *bounds)) - mean
        if abs(gap) < 0.25:
            break
        vel[movable] += gap * len(vel) / movable.sum()
        vel = np.clip(vel, 1, TOP)
    return vel


def _scale(track: symusic.Track, grid: Grid) -> None:
    """The track's velocities scaled from the grooves' level to the plan's at each onset."""
    arr = track.notes.numpy()
    if not len(arr["time"]):
        return
    vel = arr["velocity"].astype(float) * grid.level(arr["time"]) / PERCUSSION_LEVEL
    track.notes = symusic.Note.from_numpy(
        arr["time"], arr["duration"], arr["pitch"], np.clip(np.rint(vel), 1, 127).astype(int)
    )
