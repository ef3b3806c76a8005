"""Colour statistics, sampled at a fixed rate so the curves stay small."""

from __future__ import annotations

import cv2
import numpy as np

from composer.types import ColourCurves


def frame_colour(bgr: np.ndarray) -> tuple[float, float, float, float]:
    """(brightness, saturation, warmth, contrast) of one frame, each 0..1.

    Brightness is Rec. 601 luma; warmth is 0.5 + mean(R - B) / 510, so a neutral frame is 0.5, a
    fully red one 1 and a fully blue one 0; contrast is the luma's standard deviation / 127.5
    (1: half the pixels black, half white), what a monochrome picture's mood is read from.
    """
    small = bgr[::2, ::2]  # statistics need no more pixels than this
    mean_b, mean_g, mean_r, _ = cv2.mean(small)  # cv2.mean: fast on uint8, unlike numpy
    sat = cv2.mean(cv2.cvtColor(small, cv2.COLOR_BGR2HSV))[1] / 255.0
    luma = (0.299 * mean_r + 0.587 * mean_g + 0.114 * mean_b) / 255.0
    _, spread = cv2.meanStdDev(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    contrast = min(1.0, float(spread[0, 0]) / 127.5)
    return float(luma), float(sat), float(0.5 + (mean_r - mean_b) / 510.0), contrast


class ColourTracker:
    """Samples frame colour at most ``rate`` times per second."""

    def __init__(self, rate: float):
        self._interval = 1.0 / rate
        self._last = -1e9
        self.curves = ColourCurves(times=[], brightness=[], saturation=[], warmth=[], contrast=[])

    def due(self, time: float) -> bool:
        return time - self._last >= self._interval - 1e-6

    def add(self, time: float, bgr: np.ndarray) -> None:
        self._last = time
        bright, sat, warm, contrast = frame_colour(bgr)
        c = self.curves
        c.times.append(round(time, 3))
        c.brightness.append(round(bright, 4))
        c.saturation.append(round(sat, 4))
        c.warmth.append(round(warm, 4))
        c.contrast.append(round(contrast, 4))

    def finish(self) -> ColourCurves:
        return self.curves
