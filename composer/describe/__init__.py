"""Stage 2, describe: a Brief (mood, pacing, events, scenes, reasoning) for a video."""

from composer.describe.signal import describe_signal

__all__ = ["describe_signal"]
