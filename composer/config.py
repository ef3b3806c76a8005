"""Defaults in one place, as frozen dataclasses that save and load as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The music21 corpus tokenised (``composer train`` builds it when missing). The version names
# the split: v2 holds out at least 10 val and 10 test pieces of each style large enough
# (composer.train.corpus.assign_splits); a model names the split it was trained on.
DEFAULT_CACHE = Path(".cache/data-v2")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config (or any dataclass) as a plain JSON-able dict."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, ignoring keys it does not know (configs may gain fields)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


@dataclass(frozen=True)
class AnalysisConfig:
    """Stage 1: how a video is decoded and measured."""

    # Frames are decoded once, scaled by libswscale to this width (display aspect kept).
    analysis_width: int = 256
    # Optical flow runs on a further reduced grey frame, at most this many times per second.
    flow_width: int = 128
    flow_fps: float = 12.5
    # PySceneDetect ContentDetector threshold (its default) and minimum scene length (s).
    content_threshold: float = 27.0
    min_scene_s: float = 0.5
    # A frame whose mean RGB is below this (0..255) counts as black, for fades and cuts to black.
    black_level: float = 16.0
    # A transition whose content change spreads over more than this many seconds is a fade.
    fade_min_s: float = 0.2
    # Mean flow (fraction of frame width per second) that maps to motion energy 1 - 1/e.
    motion_scale: float = 0.15
    # Visual beats: peaks of motion change at least this far apart (s) and this prominent (0..1).
    beat_min_gap_s: float = 0.3
    beat_prominence: float = 0.04
    # Keyframes kept per scene, and their width in pixels.
    keyframes_per_scene: int = 3
    keyframe_width: int = 384
    # Colour samples kept per second in the analysis (features are averaged into them).
    curve_fps: float = 10.0


@dataclass(frozen=True)
class RenderConfig:
    """Stage 7: synthesis and muxing."""

    sample_rate: int = 44100
    # fluidsynth's own gain; low so its 16-bit mix never clips, the peak is normalised after.
    synth_gain: float = 0.3
    peak_dbfs: float = -1.0
    # Longest release tail rendered after the last note-off (s).
    max_tail_s: float = 2.0
    # Muxed audio: AAC bitrate and EBU R128 integrated loudness target.
    aac_bitrate: str = "192k"
    loudness_lufs: float = -16.0
    true_peak_db: float = -1.5
