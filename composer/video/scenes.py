"""Scene changes: PySceneDetect's ContentDetector for candidates, brightness for fades.

ContentDetector compares consecutive frames in HSV. It finds hard cuts well, but near black the
hue of noise flickers and it fires during fades too (high score, tiny pixel change). So, with the
mean luma and the mean absolute pixel change (BGR) of every frame measured alongside:

- fades to and from black are found from the mean-brightness curve: a run of black frames, and
  how long the picture takes to leave or reach it (longer than ``fade_min_s``: a fade);
- a ContentDetector candidate inside a fade, or between two dark frames with little luma change,
  is part of that fade, not a cut;
- a remaining candidate whose pixel change is a one-frame spike is a hard cut; one whose
  neighbours change nearly as much is gradual (a dissolve), a fade with direction "cross".
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.detectors import ContentDetector

from composer.config import AnalysisConfig
from composer.types import Cut, Scene

# Seconds searched before a black run for the level a fade-out starts from (and after one for
# the level a fade-in reaches).
_FADE_WINDOW_S = 1.5
# Mean absolute pixel change (0..255) below which two dark frames cannot be a cut, and the change
# that counts as a full-strength cut (a cut between unrelated shots typically measures 40-100).
_CUT_CHANGE = 9.0
_FULL_CUT = 96.0
# A gradual change lasting longer than this is not a dissolve (camera motion, flicker).
_MAX_DISSOLVE_S = 2.0
_THUMB = (16, 9)
_THUMB_BYTES = _THUMB[0] * _THUMB[1]


class SceneTracker:
    """Fed every analysis frame once; ``finish`` classifies what it saw into cuts and fades."""

    def __init__(self, cfg: AnalysisConfig, time_base: Fraction, rate: float):
        self.cfg = cfg
        self._tb = time_base
        self._rate = Fraction(rate).limit_denominator(100000)
        min_len = max(1, round(cfg.min_scene_s * rate))
        self._detector = ContentDetector(threshold=cfg.content_threshold, min_scene_len=min_len)
        # Per-frame scalars: a few floats per frame, bounded by duration, not resolution.
        self.times: list[float] = []
        self.brightness: list[float] = []  # mean luma, 0..255
        self._dpix: list[float] = []  # mean |bgr(i) - bgr(i-1)|, 0..255
        self._candidates: list[float] = []  # seconds (file time) ContentDetector reported
        self._t0: float | None = None
        # A 16x9 luma thumbnail per frame (144 bytes), to compare the pictures either side of a
        # gradual change: 31 MB for two hours at 30 fps.
        self._thumbs = bytearray()

    def add(self, time: float, pts: int, bgr: np.ndarray, grey: np.ndarray, dpix: float) -> bool:
        """Process one frame; True when ContentDetector just reported a scene change."""
        tc = FrameTimecode(Timecode(pts, self._tb), fps=self._rate)
        if self._t0 is None:
            self._t0 = tc.seconds
        found = self._detector.process_frame(tc, bgr)
        self.times.append(time)
        self.brightness.append(cv2.mean(grey)[0])
        self._thumbs += cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA).tobytes()
        self._dpix.append(dpix)
        self._candidates.extend(c.seconds - self._t0 for c in found)
        return bool(found)

    def finish(self, duration: float) -> tuple[list[Cut], list[Scene]]:
        """Classify candidates and black runs into cuts and fades; scenes lie between them."""
        t = np.asarray(self.times)
        b = np.asarray(self.brightness)
        if len(t) == 0:
            return [], [Scene(0.0, duration)]
        fades, abrupt = _black_transitions(t, b, self.cfg)
        cuts: list[Cut] = list(fades)
        spans = [(f.time - 0.1, f.time + f.duration + 0.1) for f in fades]
        dpix = np.asarray(self._dpix)
        dark = b < self.cfg.black_level * 2
        for ct in sorted(set(self._candidates)):
            i = min(int(np.searchsorted(t, ct - 1e-4)), len(t) - 1)
            if any(lo <= t[i] <= hi for lo, hi in spans):
                continue
            # Hue noise between dark frames: ContentDetector's known false positive in fades.
            if i > 0 and dark[i] and dark[i - 1] and dpix[i] < _CUT_CHANGE:
                continue
            strength = round(float(min(1.0, dpix[i] / _FULL_CUT)), 3)
            lo, hi = _elevated_span(dpix, i, 0.5 * dpix[i])
            if hi - lo <= 2:  # a one- or two-frame spike: a hard cut
                cuts.append(Cut(time=float(t[i]), kind="cut", strength=strength))
            elif t[hi] - t[lo] <= _MAX_DISSOLVE_S and self._differs(lo - 1, hi + 1):
                cuts.append(
                    Cut(
                        time=float(t[lo]),
                        kind="fade",
                        strength=strength,
                        direction="cross",
                        duration=round(float(t[hi] - t[lo]), 3),
                    )
                )
            # Otherwise the change is sustained but the picture is the same: motion, not a cut.
        # Abrupt jumps into or out of black that ContentDetector's minimum scene length hid.
        for i, strength in abrupt:
            if not any(c.kind == "cut" and abs(c.time - t[i]) < 0.1 for c in cuts):
                cuts.append(Cut(time=float(t[i]), kind="cut", strength=round(strength, 3)))
        cuts.sort(key=lambda c: c.time)
        return cuts, _scenes(cuts, duration)

    def _differs(self, i: int, j: int) -> bool:
        """Whether frames i and j (clamped to the video) show different pictures."""
        n = len(self._thumbs) // _THUMB_BYTES
        i, j = max(0, i), min(n - 1, j)
        a = np.frombuffer(self._thumbs, np.uint8, _THUMB_BYTES, i * _THUMB_BYTES)
        b = np.frombuffer(self._thumbs, np.uint8, _THUMB_BYTES, j * _THUMB_BYTES)
        return float(np.abs(a.astype(np.int16) - b).mean()) >= _CUT_CHANGE * 2


def _black_transitions(
    t: np.ndarray, b: np.ndarray, cfg: AnalysisConfig
) -> tuple[list[Cut], list[tuple[int, float]]]:
    """Fades found at the edges of black runs, and the frame indices of abrupt edges."""
    dark = b < cfg.black_level
    fades: list[Cut] = []
    abrupt: list[tuple[int, float]] = []
    n = len(b)
    # Edges of black runs: i where dark changes between frame i-1 and frame i.
    edges = np.flatnonzero(dark[1:] != dark[:-1]) + 1
    for i in edges:
        if dark[i]:  # picture -> black at frame i
            # At least the frame before: a damaged file can leave a gap longer than the window.
            lo = min(int(np.searchsorted(t, t[i] - _FADE_WINDOW_S)), i - 1)
            run_end = next((int(e) for e in edges if e > i), n)
            floor = float(b[i:run_end].min())
            peak = float(b[lo:i].max())
            span = peak - floor
            above = np.flatnonzero(b[lo:i] >= floor + 0.9 * span)
            start = lo + int(above[-1])
            below = np.flatnonzero(b[start:] <= floor + max(1.0, 0.1 * span))
            end = start + int(below[0]) if len(below) else i
            direction = "out"
        else:  # black -> picture at frame i
            hi = np.searchsorted(t, t[i] + _FADE_WINDOW_S, side="right")
            run_start = max((int(e) for e in edges if e < i), default=0)
            floor = float(b[run_start:i].min())
            peak = float(b[i:hi].max())
            span = peak - floor
            near_floor = np.flatnonzero(b[:i] <= floor + max(1.0, 0.1 * span))
            start = int(near_floor[-1]) if len(near_floor) else i - 1
            reached = np.flatnonzero(b[i:hi] >= floor + 0.9 * span)
            end = i + int(reached[0]) if len(reached) else i
            direction = "in"
        strength = float(min(1.0, span / _FULL_CUT))
        duration = float(t[end] - t[start])
        if duration >= cfg.fade_min_s:
            fades.append(
                Cut(
                    time=float(t[start]),
                    kind="fade",
                    strength=round(strength, 3),
                    direction=direction,
                    duration=round(duration, 3),
                )
            )
        else:
            abrupt.append((int(i), strength))
    return fades, abrupt


def _elevated_span(score: np.ndarray, i: int, level: float) -> tuple[int, int]:
    lo = i
    while lo > 0 and score[lo - 1] >= level:
        lo -= 1
    hi = i
    while hi + 1 < len(score) and score[hi + 1] >= level:
        hi += 1
    return lo, hi


def _scenes(cuts: list[Cut], duration: float) -> list[Scene]:
    """Scenes between consecutive changes (a fade's scene boundary is its midpoint)."""
    bounds = [0.0]
    for c in cuts:
        x = c.time + c.duration / 2
        if 0.05 < x < duration - 0.05 and x - bounds[-1] > 0.05:
            bounds.append(round(x, 3))
    bounds.append(duration)
    return [Scene(start=a, end=b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
