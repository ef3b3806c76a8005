"""Keyframes: a few well-lit frames per scene, chosen without holding the whole video.

Candidates are sampled along the video and kept JPEG-compressed in memory. Between two scene
changes reported during decoding (a segment), at most ``cap`` candidates are kept: when the
segment's buffer fills, every other one is dropped and the sampling interval doubles, so a long
scene keeps evenly spread candidates and memory depends on the number of scenes, not the length.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from composer.types import Keyframe, Scene

_CAP = 8


@dataclass
class _Candidate:
    time: float
    brightness: float  # 0..1
    jpeg: bytes


class KeyframeSampler:
    FIRST_INTERVAL_S = 0.25  # candidate spacing at the start of a segment

    def __init__(self, per_scene: int, black_level: float):
        self.per_scene = per_scene
        self._black = black_level / 255.0
        self._kept: list[_Candidate] = []  # closed segments
        self._open: list[_Candidate] = []
        self._interval = self.FIRST_INTERVAL_S
        self._last = -1e9

    def due(self, time: float) -> bool:
        return time - self._last >= self._interval

    def add(self, time: float, rgb: np.ndarray, brightness: float) -> None:
        self._last = time
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
        self._open.append(_Candidate(time, brightness, buf.getvalue()))
        if len(self._open) >= _CAP:
            self._open = self._open[::2]
            self._interval *= 2

    def scene_change(self) -> None:
        """A scene change was reported while decoding: start a new segment."""
        self._kept.extend(self._open)
        self._open = []
        self._interval = self.FIRST_INTERVAL_S
        self._last = -1e9

    def finish(self, scenes: list[Scene]) -> list[Keyframe]:
        """Pick up to ``per_scene`` evenly spread, non-black candidates in each scene."""
        self.scene_change()
        out: list[Keyframe] = []
        for k, sc in enumerate(scenes):
            inside = [c for c in self._kept if sc.start <= c.time < sc.end]
            lit = [c for c in inside if c.brightness > self._black] or inside
            if not lit:
                continue
            n = min(self.per_scene, len(lit))
            # Centres of n equal parts of the candidate list: evenly spread in time.
            picks = [lit[int((j + 0.5) * len(lit) / n)] for j in range(n)]
            for c in picks:
                out.append(
                    Keyframe(time=round(c.time, 3), scene=k, image=Image.open(io.BytesIO(c.jpeg)))
                )
        return out
