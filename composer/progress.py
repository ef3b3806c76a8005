"""Progress reporting and logging shared by every stage.

Core code never draws: it calls a ``ProgressFn`` with (stage, done, total) and the CLI turns that
into a bar with an ETA. ``total`` is None when the amount of work is unknown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

ProgressFn = Callable[[str, float, float | None], None]

log = logging.getLogger("composer")


def no_progress(stage: str, done: float, total: float | None) -> None:
    """The default callback: report nothing."""


@contextlib.contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """The CLI's rendering of a ProgressFn: a tqdm bar per stage, with ETA, closed on leaving."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    # Stages that count seconds of media; the others count items (files, steps, pieces).
    units = {"analyze": "s", "render": "s", "generate": "bars", "train": "steps",
             "train instruct": "steps", "index": "files"}  # fmt: skip

    def update(stage: str, done: float, total: float | None) -> None:
        bar = bars.get(stage)
        if bar is None:
            unit = units.get(stage, "")
            count = "{n:.1f}/{total:.1f}" if unit == "s" else "{n:.0f}/{total:.0f}"
            bar = bars[stage] = tqdm(
                total=total,
                desc=stage,
                unit=unit or "it",
                leave=False,
                bar_format=f"{{desc}}: {{percentage:3.0f}}%|{{bar}}| {count} {unit} "
                "[{elapsed}<{remaining}]"
                if total
                else None,
                disable=None,
            )
        if total and bar.total != total:
            bar.total = total
        bar.n = min(done, total) if total else done
        bar.refresh()

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Within the block, transformers draws no progress bar of its own while loading weights:
    composer reports its own progress, and a bar per model load would only clutter it."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
