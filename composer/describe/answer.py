"""A describer model's answer: the prompt it gets, and its reply checked against the schema.

Model-backed describers reason in free text, then answer with one JSON object. The object is
validated field by field (types, ranges, ordering); anything wrong raises ``BadAnswer`` with the
reason, which goes back to the model once as a repair request. Measured facts (event times,
cut strengths) always come from the analysis, never from the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from composer.paths import PROMPTS
from composer.types import Brief, Mood, Pacing, ReasoningStep, SceneNote


class BadAnswer(ValueError):
    """The model's reply is not a usable Brief; the message says why."""


def prompt_texts(signal: Brief) -> tuple[str, str]:
    """(system, user) texts for a clip, filled in from the signal describer's measurements."""
    system = (PROMPTS / "describe_system.txt").read_text().strip()
    measurements = "; ".join(e for step in signal.reasoning for e in step.evidence)
    scenes = ", ".join(f"{s.start:.1f}-{s.end:.1f}" for s in signal.scenes) or "one scene"
    user = (
        (PROMPTS / "describe_user.txt")
        .read_text()
        .format(
            duration=signal.duration,
            n_scenes=len(signal.scenes),
            measurements=measurements,
            scenes=scenes,
        )
    )
    return system, user.strip()


def repair_text(problem: str) -> str:
    return (PROMPTS / "describe_repair.txt").read_text().format(problem=problem).strip()


def parse_answer(text: str, signal: Brief, describer: str) -> Brief:
    """The Brief in a reply (reasoning, then a JSON object), on top of the measured one."""
    data = _last_json_object(text)
    mood = _obj(data, "mood")
    pacing = _obj(data, "pacing")
    words = mood.get("words")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise BadAnswer("mood.words must be a non-empty list of strings")
    lo, hi = _num(pacing, "tempo_min", 30, 240), _num(pacing, "tempo_max", 30, 240)
    if lo > hi:
        raise BadAnswer("pacing.tempo_min is above pacing.tempo_max")
    scenes = []
    for i, s in enumerate(data.get("scenes") or []):
        if not isinstance(s, dict) or not isinstance(s.get("caption"), str):
            raise BadAnswer(f"scenes[{i}] needs start, end and a caption string")
        start, end = _num(s, "start", 0, signal.duration + 1), _num(s, "end", 0, 1e9)
        if end <= start:
            raise BadAnswer(f"scenes[{i}] ends before it starts")
        scenes.append(SceneNote(start, min(end, signal.duration), s["caption"][:200]))
    steps = []
    for i, r in enumerate(data.get("reasoning") or []):
        ev = r.get("evidence") if isinstance(r, dict) else None
        if (
            not isinstance(r, dict)
            or not isinstance(r.get("text"), str)
            or not (isinstance(ev, list) and all(isinstance(e, str) for e in ev))
        ):
            raise BadAnswer(f"reasoning[{i}] needs a text string and an evidence list")
        steps.append(ReasoningStep(r["text"][:500], ev[:12]))
    before = text[: text.rfind("{")].strip() if not steps else ""
    if before:  # the free-text reasoning before the JSON is the chain of thought
        steps = [ReasoningStep(p.strip()[:500], []) for p in re.split(r"\n\s*\n", before) if p]
    return replace(
        signal,
        mood=Mood(_num(mood, "valence", 0, 1), _num(mood, "arousal", 0, 1), words[:6]),
        pacing=Pacing(_num(pacing, "energy", 0, 1), lo, hi),
        scenes=scenes or signal.scenes,
        reasoning=steps or signal.reasoning,
        describer=describer,
    )


def _last_json_object(text: str) -> dict:
    """The last balanced {...} in ``text`` that parses as a JSON object."""
    ends = [i for i, c in enumerate(text) if c == "}"]
    for end in reversed(ends):
        depth = 0
        for start in range(end, -1, -1):
            depth += {"}": 1, "{": -1}.get(text[start], 0)
            if depth == 0:
                try:
                    data = json.loads(text[start : end + 1])
                except ValueError:
                    break
                if isinstance(data, dict):
                    return data
                break
    raise BadAnswer("no JSON object in the reply")


def _obj(data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise BadAnswer(f"{key} must be an object")
    return value


def _num(data: dict, key: str, lo: float, hi: float) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadAnswer(f"{key} must be a number")
    if not lo <= value <= hi:
        raise BadAnswer(f"{key}={value} is outside {lo}..{hi}")
    return float(value)
