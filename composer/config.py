"""Defaults in one place, as frozen dataclasses that save and load as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


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


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one request may ask for; each is overridable by its environment
    variable (``COMPOSER_`` + the field's name in capitals, e.g. ``COMPOSER_MAX_RENDER_S``)."""

    # Longest audio rendered (s): a MIDI file that would play longer is refused before
    # rendering (a 52-byte file with a slow tempo and one huge delta asks for petabytes).
    max_render_s: float = 7200.0
    # Longest piece composed or generated (s), and the tempo range a piece may take (bpm).
    max_duration_s: float = 1800.0
    min_bpm: float = 20.0
    max_bpm: float = 300.0
    # Longest text request (characters).
    max_prompt_chars: int = 2000

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, with any ``COMPOSER_<FIELD>`` environment variable applied."""
        import os

        from composer.errors import ComposerError

        values = {}
        for f in dataclasses.fields(cls):
            name = f"COMPOSER_{f.name.upper()}"
            if (raw := os.environ.get(name)) is None:
                continue
            try:
                value = float(raw) if f.type == "float" else int(raw)
            except ValueError:
                value = float("nan")
            if not value > 0 or value == float("inf"):
                raise ComposerError(
                    None, f"environment variable {name}={raw!r} is not a number > 0"
                )
            values[f.name] = value
        return cls(**values)


def limits() -> Limits:
    """The limits in force now (read from the environment on each call)."""
    return Limits.from_env()


def duration_words(seconds: float) -> str:
    """A duration for a message: "45 s", "12 min", "2 h", "18 days", "3e+04 years"."""
    if not seconds < 120:  # nan and inf read as themselves
        for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600)):
            if seconds >= 2 * size:
                return f"{seconds / size:.3g} {unit}"
        if seconds >= 120:
            return f"{seconds / 60:.3g} min"
    return f"{seconds:g} s"


def tempo_problem(bpm: float) -> str | None:
    """Why composer cannot play ``bpm``, or None when it can."""
    lim = limits()
    if lim.min_bpm <= bpm <= lim.max_bpm:
        return None
    return (
        f"{bpm:g} bpm is outside the {lim.min_bpm:g}-{lim.max_bpm:g} bpm composer plays "
        "(COMPOSER_MIN_BPM and COMPOSER_MAX_BPM set them)"
    )


def duration_problem(seconds: float) -> str | None:
    """Why composer cannot write ``seconds`` of music, or None when it can."""
    longest = limits().max_duration_s
    if not seconds > 0:
        return f"{seconds:g} s is not a duration (it must be longer than 0 s)"
    if seconds > longest:
        return (
            f"{duration_words(seconds)} is longer than the {duration_words(longest)} composer "
            "writes (COMPOSER_MAX_DURATION_S raises it)"
        )
    return None
