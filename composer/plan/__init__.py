"""Stage 3, plan: tempo, bars, sections, intensity and hit points from the brief and the request."""

from __future__ import annotations

from composer.plan.planner import make_plan
from composer.plan.request import PromptFacts, parse_prompt
from composer.types import Brief, Plan, VideoAnalysis


def plan(
    brief: Brief | None = None,
    request: str | PromptFacts = "",
    analysis: VideoAnalysis | None = None,
    *,
    duration: float | None = None,
    seed: int = 0,
) -> Plan:
    """The Plan for a video's ``brief`` (with its ``analysis``: motion sets bar intensity) and
    a ``request`` in words (or already read, as PromptFacts); either may be missing. Without a
    video, ``duration`` (seconds) is the music's length when the request states none."""
    facts = parse_prompt(request) if isinstance(request, str) else request
    if duration is not None and brief is None:
        facts.duration = duration
    return make_plan(brief, facts, analysis, seed=seed)


__all__ = ["PromptFacts", "make_plan", "parse_prompt", "plan"]
