"""Motion energy from dense optical flow, and visual beats from its changes.

Energy is on a fixed scale so clips can be compared: the mean flow magnitude as a fraction of
the frame width per second, x, mapped to 1 - exp(-x / motion_scale) in 0..1.

Visual beats follow the video-background-music literature (CMT, Di et al. 2021, after Davis and
Agrawala's visual rhythm): the onset envelope of motion (its positive change) is peak-picked, with
a minimum gap and prominence so camera shake does not make a drum roll.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.signal import find_peaks

from composer.config import AnalysisConfig
from composer.types import Cut, MotionCurve

# Luma standard deviation (0..255) under which a frame has no texture to track.
_FLAT_STD = 4.0


class MotionTracker:
    """Fed luma frames at most ``flow_fps`` times per second; keeps one frame and the curve."""

    def __init__(self, cfg: AnalysisConfig):
        self.cfg = cfg
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._prev: np.ndarray | None = None
        self._prev_time = 0.0
        self._prev_flat = True
        self.times: list[float] = []
        self.speed: list[float] = []  # frame widths per second
        self._spans: list[tuple[float, float]] = []  # (t0, t1) each speed sample covers

    def due(self, time: float) -> bool:
        return self._prev is None or time - self._prev_time >= 1.0 / self.cfg.flow_fps - 1e-6

    def add(self, time: float, grey: np.ndarray) -> None:
        h, w = grey.shape
        fw = min(self.cfg.flow_width, w)
        grey = cv2.resize(grey, (fw, max(8, round(h * fw / w))), interpolation=cv2.INTER_AREA)
        # Normalise contrast so a fade (the same picture, dimmed) does not look like motion to
        # the flow, whose brightness-constancy assumption it breaks.
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(grey))
        flat = std < _FLAT_STD
        grey = cv2.convertScaleAbs(
            grey,
            alpha=48.0 / max(std, 1e-3),
            beta=128.0 - 48.0 * mean / max(std, 1e-3),
        )
        if self._prev is not None:
            flow = self._flow.calc(self._prev, grey, None)  # (h, w, 2) pixels
            mag = cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0]
            # Flow on a flat frame (black, a title card's background) is noise, not motion.
            if flat or self._prev_flat:
                mag = 0.0
            dt = max(time - self._prev_time, 1e-3)
            self.times.append((time + self._prev_time) / 2)
            self.speed.append(mag / fw / dt)
            self._spans.append((self._prev_time, time))
        self._prev, self._prev_time, self._prev_flat = grey, time, flat

    def finish(self, cuts: list[Cut]) -> tuple[MotionCurve, list[float]]:
        """The motion curve (samples spanning a scene change are interpolated) and the beats."""
        if not self.times:
            return MotionCurve(times=[], energy=[]), []
        t = np.asarray(self.times)
        x = np.asarray(self.speed)
        # Flow across a cut or during a fade measures the change of picture (and, near black,
        # amplified noise), not motion: drop those samples and interpolate.
        s0, s1 = np.asarray(self._spans).T
        bad = np.zeros(len(t), dtype=bool)
        for c in cuts:
            bad |= (s0 < c.time + c.duration + 1e-3) & (s1 > c.time - 1e-3)
        if bad.all():
            x = np.zeros_like(x)
        elif bad.any():
            x[bad] = np.interp(t[bad], t[~bad], x[~bad])
        energy = 1.0 - np.exp(-x / self.cfg.motion_scale)
        beats = _visual_beats(t, energy, self.cfg)
        return (
            MotionCurve(
                times=[round(v, 3) for v in t.tolist()],
                energy=[round(v, 4) for v in energy.tolist()],
            ),
            beats,
        )


def _visual_beats(t: np.ndarray, energy: np.ndarray, cfg: AnalysisConfig) -> list[float]:
    if len(t) < 3:
        return []
    # Light smoothing (3 samples) so single-sample flow noise does not become a beat.
    smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
    onset = np.maximum(np.diff(smooth, prepend=smooth[0]), 0.0)
    rate = (len(t) - 1) / max(t[-1] - t[0], 1e-6)
    peaks, _ = find_peaks(
        onset, distance=max(1, round(cfg.beat_min_gap_s * rate)), prominence=cfg.beat_prominence
    )
    return [round(float(t[p]), 3) for p in peaks]
