"""Stage 2, describe: a Brief (mood, pacing, events, scenes, reasoning) for a video."""

from composer.describe.signal import describe_signal
from composer.errors import ComposerError
from composer.types import Brief, VideoAnalysis

BACKENDS = ("signal", "transformers:PATH", "openai:URL")


def describe(analysis: VideoAnalysis, describer: str = "signal") -> Brief:
    """The Brief from the named describer (``signal``, ``transformers:PATH``, ``openai:URL``)."""
    kind, _, target = describer.partition(":")
    if kind == "signal" and not target:
        return describe_signal(analysis)
    if kind == "transformers" and target:
        from composer.describe.backends import describe_transformers

        return describe_transformers(analysis, describe_signal(analysis), target)
    if kind == "openai" and target:
        from composer.describe.backends import describe_openai

        return describe_openai(analysis, describe_signal(analysis), target)
    raise ComposerError(None, f"unknown describer {describer!r}; valid: " + ", ".join(BACKENDS))


__all__ = ["BACKENDS", "describe", "describe_signal"]
