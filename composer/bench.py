"""Benchmarks that print figures measured side by side in one run (``composer bench``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from composer.config import AnalysisConfig
from composer.video import analyze, probe_video


@dataclass(frozen=True)
class AnalyzeBench:
    path: str
    width: int
    height: int
    duration: float
    full_s: float  # composer's whole analysis (best of the repeats)
    content_only_s: float  # PySceneDetect's ContentDetector alone on the same file

    @property
    def ratio(self) -> float:
        return self.full_s / self.content_only_s

    def report(self) -> str:
        return "\n".join(
            [
                f"file: {self.path} ({self.width}x{self.height}, {self.duration:.2f} s)",
                f"full analysis (cuts, fades, motion, beats, colour, keyframes): "
                f"{self.full_s:.3f} s  ({self.duration / self.full_s:.1f}x real time)",
                f"PySceneDetect ContentDetector alone (scenedetect.detect):      "
                f"{self.content_only_s:.3f} s",
                f"ratio full / ContentDetector: {self.ratio:.2f}",
            ]
        )


def bench_analyze(
    path: str | Path, repeat: int = 3, config: AnalysisConfig | None = None
) -> AnalyzeBench:
    """Time ``analyze`` and ContentDetector alone on the same file, interleaved, best of each."""
    import logging

    from scenedetect import ContentDetector, detect

    logging.getLogger("pyscenedetect").setLevel(logging.WARNING)  # its per-run INFO lines
    info = probe_video(path)
    full, content = [], []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        detect(str(path), ContentDetector())
        content.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = analyze(path, config)
        full.append(time.perf_counter() - t0)
    return AnalyzeBench(
        str(path), info.width, info.height, result.duration, min(full), min(content)
    )
