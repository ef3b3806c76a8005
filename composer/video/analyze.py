"""Stage 1: ``analyze(path) -> VideoAnalysis`` from a single decoding pass."""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2

from composer.config import AnalysisConfig
from composer.errors import ComposerError
from composer.progress import ProgressFn, log, no_progress
from composer.types import VideoAnalysis
from composer.video.colour import ColourTracker
from composer.video.decode import decode_frames
from composer.video.keyframes import KeyframeSampler
from composer.video.motion import MotionTracker
from composer.video.probe import open_video
from composer.video.scenes import SceneTracker

# A file whose frames stop this long before its declared end is treated as truncated.
_TRUNCATION_SLACK = 0.9


def _mean(img) -> float:
    """Mean over all pixels and channels (cv2.mean is several times faster than numpy on uint8)."""
    per_channel = cv2.mean(img)
    channels = 1 if img.ndim == 2 else img.shape[2]
    return sum(per_channel[:channels]) / channels


def analyze(
    path: str | Path,
    config: AnalysisConfig | None = None,
    progress: ProgressFn = no_progress,
) -> VideoAnalysis:
    """Decode ``path`` once at analysis size and measure cuts, motion, beats, colour, keyframes.

    Raises ComposerError (naming the file) for a missing, non-video, audio-only, empty or
    truncated file.
    """
    cfg = config or AnalysisConfig()
    with open_video(path) as (container, info):
        stream = container.streams.video[0]
        rate = info.average_rate or 25.0
        scenes = SceneTracker(cfg, stream.time_base, rate)
        motion = MotionTracker(cfg)
        colour = ColourTracker(cfg.curve_fps)
        keys = KeyframeSampler(cfg.keyframes_per_scene, cfg.black_level)
        total = info.duration
        count, last_time, intervals = 0, 0.0, []
        prev = None
        # closing(): on any exception (Ctrl-C, SIGTERM, an error) the decoding thread is
        # stopped and joined before the container closes under it.
        frames = decode_frames(
            container,
            info,
            cfg.analysis_width,
            cfg.keyframe_width,
            still_every=KeyframeSampler.FIRST_INTERVAL_S,
        )
        with contextlib.closing(frames):
            for frame in frames:
                dpix = 0.0 if prev is None else _mean(cv2.absdiff(frame.bgr, prev))
                prev = frame.bgr
                if scenes.add(frame.time, frame.pts, frame.bgr, frame.grey, dpix):
                    keys.scene_change()
                if colour.due(frame.time):
                    colour.add(frame.time, frame.bgr)
                if motion.due(frame.time):
                    motion.add(frame.time, frame.grey)
                if frame.still is not None and keys.due(frame.time):
                    keys.add(frame.time, frame.still, scenes.brightness[-1] / 255.0)
                if count:
                    intervals.append(frame.time - last_time)
                count, last_time = count + 1, frame.time
                if count % 30 == 0:
                    progress("analyze", frame.time, total)
    if count == 0:
        raise ComposerError(path, "has a video stream but no frames (a zero length video)")
    # The last frame is shown for one frame interval (the median, robust to VFR gaps).
    intervals.sort()
    frame_dur = intervals[len(intervals) // 2] if intervals else 1.0 / rate
    duration = round(last_time + frame_dur, 3)
    if total and total > 1.0 and duration < _TRUNCATION_SLACK * total:
        raise ComposerError(
            path, f"truncated: frames stop at {duration:.2f} s of a declared {total:.2f} s"
        )
    progress("analyze", duration, duration)
    cuts, scene_list = scenes.finish(duration)
    curve, beats = motion.finish(cuts)
    # Variable frame rate: over a tenth of the frame intervals stray 25% from the median.
    strays = sum(abs(d - frame_dur) > 0.25 * frame_dur for d in intervals)
    vfr = strays > 0.1 * len(intervals)
    result = VideoAnalysis(
        path=str(path),
        duration=duration,
        fps=round(count / duration, 3),
        width=info.width,
        height=info.height,
        pixel_aspect=round(info.pixel_aspect, 4),
        start_time=round(info.start_time, 3),
        frame_count=count,
        cuts=cuts,
        scenes=scene_list,
        motion=curve,
        beats=beats,
        colour=colour.finish(),
        keyframes=keys.finish(scene_list),
        variable_frame_rate=vfr,
        has_audio=info.has_audio,
        rotation=info.rotation,
    )
    log.info(
        "%s: %.2f s, %d frames, %d cuts/fades, %d beats",
        path,
        duration,
        count,
        len(cuts),
        len(beats),
    )
    return result
