"""Stage 1, analyse: one decoding pass over a video gives cuts, motion, beats, colour, keyframes."""

from composer.video.analyze import analyze
from composer.video.probe import VideoInfo, open_video, probe_video

__all__ = ["VideoInfo", "analyze", "open_video", "probe_video"]
