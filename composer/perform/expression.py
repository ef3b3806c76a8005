"""Expression (CC11) swells for instruments that can change loudness while a note sounds."""

from __future__ import annotations

import numpy as np
import symusic

from composer.perform.grid import Grid

EXPRESSION = 11  # the MIDI controller number
# General MIDI programs that sustain and swell: organs, bowed strings and ensembles (not
# pizzicato 45, harp 46, timpani 47), choirs, brass, reeds, pipes and pads.
SUSTAINED = frozenset(
    [*range(16, 24), *range(40, 45), *range(48, 56), *range(56, 80), *range(88, 96)]
)
FLOOR, CEILING = 70, 127  # the swell's range: a phrase's start and end, and its crest
ARCH_SHARE = 0.75  # of the swell from the phrase arch; the rest from the bar's intensity


def sustains(program: int) -> bool:
    return program in SUSTAINED


def swell(grid: Grid, end: int) -> list[symusic.ControlChange]:
    """One CC11 point per beat up to ``end`` (ticks) that follows the phrase arch and the
    bar's intensity; repeated values are left out."""
    ticks = np.arange(0, max(end, 1), grid.pulse_ticks)
    shape = ARCH_SHARE * (grid.arch(ticks) + 1) / 2
    shape += (1 - ARCH_SHARE) * grid.intensity[grid.bar(ticks)] / 3
    values = np.rint(FLOOR + (CEILING - FLOOR) * shape).astype(int)
    keep = np.ones(len(values), bool)
    keep[1:] = values[1:] != values[:-1]
    return [
        symusic.ControlChange(int(t), EXPRESSION, int(v))
        for t, v in zip(ticks[keep], values[keep], strict=True)
    ]
