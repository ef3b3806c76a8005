"""make_plan: the Brief (the video) and PromptFacts (the request) become one Plan.

Where the request says something explicitly, it wins over the video, and the plan says so;
free-text matches count when their confidence passes the threshold; otherwise the video decides,
and without a video, the defaults. Tempo is fitted so that strong cuts land on bar lines (or on
beats, with a hit accent); sections follow scenes; bar intensity follows motion energy.
"""

from __future__ import annotations

import math

import numpy as np

from composer.config import duration_problem, limits, tempo_problem
from composer.errors import ComposerError
from composer.music.keys import key_name
from composer.music.qualities import IMPLIED, forms
from composer.music.words import TEMPO_WORDS, meter_class, meter_problem, tempo_class
from composer.plan.form import plan_form
from composer.plan.palette import STYLE_DEFAULTS, choose_palette
from composer.plan.request import PromptFacts
from composer.plan.tempo import fit_tempo
from composer.tokens import TokenizerSpec
from composer.types import BarPlan, Brief, Choice, HitPoint, Plan, VideoAnalysis

STRONG_CUT = 0.5  # cut strength from which a cut must be marked in the music
DEFAULT_DURATION = 30.0
# Motion energy (bar mean) thresholds for intensity levels 1, 2 and 3.
_INTENSITY_MOTION = (0.06, 0.15, 0.3)
# Bar intensity under a stated density: sparse bars stay low, dense ones high (by level 0..3).
_DENSITY_LEVELS = {"sparse": (0, 0, 0, 1), "dense": (2, 3, 3, 3)}
# ... and the accompaniment: chords held through the bar, or broken in running 16ths.
_DENSITY_TEXTURE = {"sparse": "held", "dense": "running"}
# A named mood's dynamics by its arousal: below 0.3 soft, to 0.85 medium, above loud.
_MOOD_DYNAMICS = ((0.3, "soft"), (0.85, "medium"))
_CLASS_METER = {"duple": (4, 4), "triple": (3, 4), "compound": (6, 8)}
# The arousal a request's words imply when no mood matched and no video speaks.
_AROUSAL = {("tempo", "fast"): 0.75, ("tempo", "slow"): 0.25, ("dynamics", "loud"): 0.7,
            ("dynamics", "soft"): 0.25}  # fmt: skip


def make_plan(
    brief: Brief | None,
    facts: PromptFacts | None = None,
    analysis: VideoAnalysis | None = None,
    *,
    seed: int = 0,
    spec: TokenizerSpec | None = None,
) -> Plan:
    """One Plan from the video's brief and the request (either may be missing)."""
    spec = spec or TokenizerSpec()
    rng = np.random.default_rng(seed)
    facts = facts or PromptFacts(text="")
    _check(facts, spec)

    # Duration: the video's, else the request's, else the default.
    if brief is not None:
        duration = Choice(round(brief.duration, 3), "video", "the music lasts the video")
        if facts.duration is not None:
            duration.why += f" (the {facts.duration:g} s asked for yields to the video)"
    elif facts.duration is not None:
        duration = Choice(facts.duration, "prompt", f"asked for {facts.duration:g} s")
    else:
        duration = Choice(DEFAULT_DURATION, "default", "no video and no duration asked")

    # Mood: the request's words when they match, else the video's, else what the words imply.
    if facts.mood is not None:
        mood = Choice(
            [facts.mood.name], "prompt", f"the request reads as {facts.mood.name} "
            f"(similarity {facts.mood.confidence})", facts.mood.confidence,
        )  # fmt: skip
        valence, arousal = facts.mood.valence, facts.mood.arousal
    elif brief is not None:
        mood = Choice(brief.mood.words, "video", brief.reasoning[0].text if brief.reasoning else "")
        valence, arousal = brief.mood.valence, brief.mood.arousal
    else:
        mood = Choice(["calm"], "default", "nothing to go on")
        valence, arousal = 0.6, 0.4
        for r in facts.readings:
            if (implied := _AROUSAL.get((r.attribute, r.value))) is not None:
                arousal = implied
                mood.why = f"{r.words!r} implies arousal {arousal:g}"
                break
    palette = choose_palette(facts, mood.source, valence, arousal)
    style, form = palette.style, facts.quality("form")

    if facts.meter is not None:
        meter = Choice(list(facts.meter), "prompt", f"asked for {facts.meter[0]}/{facts.meter[1]}")
    elif form is not None:
        meter = Choice(list(forms()[form.value].meter), "prompt",
                       f"a {form.value} is in {'/'.join(map(str, forms()[form.value].meter))}",
                       form.confidence)  # fmt: skip
    elif (said := facts.quality("meter")) and said.value != meter_class(*_usual_meter(style)):
        meter = Choice(list(_CLASS_METER[said.value]), "prompt",
                       f"{said.words!r} asks for {said.value} meter", said.confidence)  # fmt: skip
    else:
        meter = Choice(list(_usual_meter(style)), "default", f"the usual meter of {style.value}")
    num, den = meter.value

    # Key: explicit, else the mode from valence and a tonic from the seed.
    if facts.key is not None:
        key = Choice(list(facts.key), "prompt", f"asked for {key_name(*facts.key)}")
    else:
        said = facts.quality("mode")
        mode = said.value if said else "major" if valence >= 0.5 else "minor"
        tonic = int(rng.choice([0, 2, 7, 5, 9]) if mode == "major" else rng.choice([9, 2, 4, 7]))
        key = Choice(
            [tonic, mode], "video" if brief or facts.mood else "default",
            f"valence {valence:.2f} suggests {mode}; tonic {key_name(tonic, mode)} by seed",
        )  # fmt: skip

    # Tempo (quarter notes per minute): explicit bpm, else tempo words, else the mood's range.
    if facts.bpm is not None:
        lo = hi = facts.bpm
        why = f"asked for {facts.bpm:g} bpm"
        if facts.tempo_range and not (facts.tempo_range[0] <= facts.bpm <= facts.tempo_range[1]):
            why += (
                f"; the tempo words suggest {facts.tempo_range[0]:g}-{facts.tempo_range[1]:g} "
                "bpm, but the explicit number wins"
            )
        tempo_source = "prompt"
    elif (said := _stated_tempo(facts)) is not None:
        (lo, hi), why = said
        tempo_source = "prompt"
    elif brief is not None:
        lo, hi = brief.pacing.tempo_min, brief.pacing.tempo_max
        why, tempo_source = f"the video's pacing suggests {lo:g}-{hi:g} bpm", "video"
    else:
        lo, hi = 60 + 80 * arousal - 10, 60 + 80 * arousal + 10
        why, tempo_source = f"arousal {arousal:.2f} suggests {lo:.0f}-{hi:.0f} bpm", "default"

    # Fit in units of the meter's beat (eighths in 6/8): strong cuts onto bar lines or beats.
    unit = den / 4  # beat units per quarter note
    cuts = []
    if brief is not None:
        cuts = [e.time for e in brief.events if e.kind == "cut" and e.strength >= STRONG_CUT]
    # An explicit tempo is kept exactly: then the last bar is cut at the end instead.
    explicit = facts.bpm is not None
    if not explicit and (short := _whole_bars_tempo(lo, hi, duration.value, num / unit)):
        lo = hi = short
        why += f"; {short:g} bpm instead, so that whole bars fill the {duration.value:g} s"
    fit = fit_tempo(
        cuts,
        (lo * unit, hi * unit),
        num,
        tolerance=0.0 if explicit else 0.02,
        max_change=0.0 if explicit else 0.08,
        end=None if explicit else duration.value,
    )
    tempo = Choice(round(fit.tempo / unit, 3), tempo_source, why)

    bars = _bars(fit, duration.value, brief, analysis, num, arousal)
    hit_points = []
    for cut, beat in sorted(fit.cut_beats.items()):
        bar, b = divmod(beat, num)
        if bar < len(bars):
            if b:  # off the bar line: a hit accent on that beat
                bars[bar].hit = b
            bars[bar].cut = cut
            hit_points.append(HitPoint(cut, "cut", bar, b, round(fit.time_of(beat), 4), b == 0))

    if facts.drums is not None:
        drums = Choice(facts.drums, "prompt", "asked " + ("for" if facts.drums else "for no") +
                       " percussion")  # fmt: skip
    elif palette.ensemble_drums is not None:
        has = "has" if palette.ensemble_drums else "has no"
        drums = Choice(palette.ensemble_drums, palette.instruments.source,
                       f"the ensemble {has} drums")  # fmt: skip
    else:
        on = arousal >= 0.6 and style.value not in ("chorale", "renaissance", "medieval")
        drums = Choice(on, "video" if brief else "default", f"arousal {arousal:.2f}")

    if (said := facts.quality("intensity")) is not None:  # "more intense": a level up
        step = 1 if said.value == "more" else -1
        for bar in bars:
            bar.intensity = int(np.clip(bar.intensity + step, 0, 3))
    density = _said(facts, "density", "medium")
    texture = palette.texture
    if density.value in _DENSITY_LEVELS:
        levels = _DENSITY_LEVELS[density.value]
        for bar in bars:
            bar.intensity = levels[bar.intensity]
        if texture.value == "free":  # no dance's pattern: the accompaniment follows the density
            name = _DENSITY_TEXTURE[density.value]
            texture = Choice(name, "prompt", f"{density.value}: {name} accompaniment")
    layout = plan_form(bars, style=style.value, meter=(num, den), bpm=tempo.value,
                     instruments=list(palette.instruments.value),
                     texture=(texture.value, texture.source == "prompt"))  # fmt: skip
    return Plan(
        duration=duration, style=style, key=key, meter=meter, tempo=tempo,
        instruments=palette.instruments, drums=drums, mood=mood,
        tempo_map=[_quarters(s, unit) for s in fit.segments], bars=bars,
        hit_points=hit_points, unplaced=fit.unplaced, seed=seed,
        dynamics=_dynamics(facts), density=density, register=_said(facts, "register", "middle"),
        texture=texture, form=layout,
    )  # fmt: skip


def _said(facts: PromptFacts, attribute: str, default: str) -> Choice:
    """The value the request's words state for ``attribute``, else ``default``."""
    if (r := facts.quality(attribute)) is not None:
        return Choice(r.value, "prompt", f"from {r.words!r}", r.confidence)
    return Choice(default, "default", f"the request states no {attribute}")


def _dynamics(facts: PromptFacts) -> Choice:
    """The stated dynamics, else a form's, else a named mood's (calm is played softly)."""
    if facts.quality("dynamics") is None:
        if (form := facts.quality("form")) and (level := forms()[form.value].dynamics):
            return Choice(level, "prompt", f"a {form.value} is played {level}", IMPLIED)
        if facts.mood is not None and facts.mood.arousal is not None:
            level = next((v for a, v in _MOOD_DYNAMICS if facts.mood.arousal < a), "loud")
            if level != "medium":
                why = f"{facts.mood.name} music is played {level}"
                return Choice(level, "prompt", why, facts.mood.confidence * IMPLIED)
    return _said(facts, "dynamics", "medium")


def _usual_meter(style: Choice) -> tuple[int, int]:
    return STYLE_DEFAULTS[style.value][0]


def _stated_tempo(facts: PromptFacts) -> tuple[tuple[float, float], str] | None:
    """A tempo range (quarter notes per minute) from the request's words, and why: a dance's
    own range where the tempo words agree with it ("a lively jig" is a jig's speed), else the
    tempo words' range, else a stated tempo class's, else the dance's."""
    form = forms()[r.value] if (r := facts.quality("form")) else None
    said = facts.quality("tempo")
    words = tempo_class(sum(facts.tempo_range) / 2) if facts.tempo_range else None
    wanted = words or (said.value if said else None)
    if form is not None and wanted in (None, tempo_class(sum(form.tempo) / 2)):
        lo, hi = form.tempo
        return (lo, hi), f"a {form.name} is played at {lo:g}-{hi:g} bpm"
    if facts.tempo_range is not None:
        lo, hi = facts.tempo_range
        return (lo, hi), f"tempo words ask for {lo:g}-{hi:g} bpm"
    if said is not None:
        lo, hi = TEMPO_WORDS[said.value]  # the tempo word for the class states its range
        return (lo, hi), f"{said.words!r} reads as {said.value}: {lo:g}-{hi:g} bpm"
    return None


def _check(facts: PromptFacts, spec: TokenizerSpec) -> None:
    """Refuse, in one line, a meter, tempo or duration composer cannot write.

    ``parse_prompt`` never returns one (it records such words as ignored), so one here was set
    by a caller (``--duration``, or PromptFacts built by hand); it is refused, not replaced,
    because music other than what was asked for is worse than being told what to fix.
    """
    problems = [
        facts.meter is not None and meter_problem(facts.meter, spec.meters),
        *(tempo_problem(bpm) for bpm in (facts.bpm, *(facts.tempo_range or ())) if bpm is not None),
        facts.duration is not None and duration_problem(facts.duration),
    ]
    if why := next(filter(None, problems), None):
        raise ComposerError(None, f"cannot plan the request: {why}")


def _whole_bars_tempo(lo: float, hi: float, seconds: float, bar_quarters: float) -> float | None:
    """A tempo (quarter notes per minute) at which whole bars fill ``seconds``, when the tempo
    fit cannot reach one: a piece of a bar or two, which would otherwise run past its end.
    Without cuts the fit takes the middle of ``lo``-``hi`` and eases it by at most 8% to end
    on a bar line. None when that serves."""

    def bars_at(bpm: float) -> float:
        return seconds * bpm / 60 / bar_quarters

    middle = (lo + hi) / 2
    if math.floor(bars_at(middle * 1.08)) >= max(1, math.ceil(bars_at(middle * 0.92))):
        return None
    bound = limits()
    fits = [n * bar_quarters * 60 / seconds for n in range(1, math.ceil(bars_at(hi)) + 1)]
    fits = [t for t in fits if bound.min_bpm <= t <= bound.max_bpm]
    if not fits:
        return None
    return round(min(fits, key=lambda t: min(abs(t - lo), abs(t - hi))), 3)


def _quarters(seg, unit: float):
    from composer.types import TempoSegment

    return TempoSegment(seg.start, seg.beat, round(seg.bpm / unit, 3))


def _bars(
    fit,
    duration: float,
    brief: Brief | None,
    analysis: VideoAnalysis | None,
    beats_per_bar: int,
    arousal: float,
) -> list[BarPlan]:
    """The bar grid over ``duration``: sections at scene starts, intensity from motion.

    Only whole bars: where they stop short of the end (an explicit tempo), the last chord is
    held to it, so the closing cadence is never cut off."""
    n = fit.whole_bars(duration)
    starts = [fit.time_of(i * beats_per_bar) for i in range(n + 1)]
    scene_starts = [s.start for s in brief.scenes if s.start > 0] if brief else []
    times = np.asarray(analysis.motion.times) if analysis else np.zeros(0)
    energy = np.asarray(analysis.motion.energy) if analysis else np.zeros(0)
    out = []
    for i in range(n):
        start, end = starts[i], starts[i + 1]
        inside = (times >= start) & (times < end)
        # Bar intensity follows the motion under it; without a video, the mood's arousal.
        level_of = float(energy[inside].mean()) if inside.any() else arousal * 0.35
        level = int(np.searchsorted(_INTENSITY_MOTION, level_of, "right"))
        section = i == 0 or any(start - 0.05 <= s < end - 0.05 for s in scene_starts)
        out.append(BarPlan(i, round(start, 4), level, None, section))
    return out
