"""Progress reporting and logging shared by every stage.

Core code never draws: it calls a ``ProgressFn`` with (stage, done, total) and the CLI turns that
into a bar with an ETA. ``total`` is None when the amount of work is unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

ProgressFn = Callable[[str, float, float | None], None]

log = logging.getLogger("composer")


def no_progress(stage: str, done: float, total: float | None) -> None:
    """The default callback: report nothing."""
