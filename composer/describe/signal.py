"""The default describer: a Brief computed from the measured VideoAnalysis alone.

Deterministic and cheap. Arousal follows how busy the picture is (motion energy and its peaks,
cut rate); valence follows how bright, saturated and warm it is (the colour-emotion
associations of Valdez & Mehrabian, 1994, and of film-music practice). Each reasoning step
cites the numbers it used.
"""

from __future__ import annotations

import numpy as np

from composer.types import (
    Brief,
    Event,
    Mood,
    Pacing,
    ReasoningStep,
    SceneNote,
    VideoAnalysis,
)

# Scales that map a measurement to 0..1 (the value that counts as "a lot").
_BUSY_MOTION = 0.5  # mean motion energy of a sports clip
_BUSY_CUTS = 4.0  # hard cuts per 10 s of a fast trailer
_TEMPO = (60.0, 150.0)  # bpm at arousal 0 and 1
_TEMPO_SPREAD = 12.0  # bpm either side of the centre
_MONOCHROME = 0.06  # mean saturation below which a picture is black and white (or sepia)
_PLAIN_CONTRAST = 0.2  # luma spread of an ordinary frame


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _mean_in(times: list[float], values: list[float], start: float, end: float) -> float:
    t, v = np.asarray(times), np.asarray(values)
    inside = (t >= start) & (t < end)
    return float(v[inside].mean()) if inside.any() else float(v.mean()) if len(v) else 0.0


def mood_words(valence: float, arousal: float) -> list[str]:
    """A few words for a point of the valence-arousal plane (Russell's circumplex)."""
    if arousal >= 0.5:
        return ["energetic", "bright", "joyful"] if valence >= 0.5 else ["tense", "driving", "dark"]
    return ["calm", "warm", "gentle"] if valence >= 0.5 else ["sombre", "still", "melancholic"]


def describe_signal(a: VideoAnalysis) -> Brief:
    """A Brief from the analysis: mood, pacing, events, scenes and the reasoning behind them."""
    dur = max(a.duration, 1e-6)
    hard = [c for c in a.cuts if c.kind == "cut"]
    cuts_per_10s = len(hard) / dur * 10
    energy = np.asarray(a.motion.energy) if a.motion.energy else np.zeros(1)
    motion = float(energy.mean())
    peak = float(np.percentile(energy, 90))
    col = a.colour
    bright = float(np.mean(col.brightness)) if col.brightness else 0.5
    sat = float(np.mean(col.saturation)) if col.saturation else 0.3
    warm = float(np.mean(col.warmth)) if col.warmth else 0.5

    busy = _clip(0.7 * motion / _BUSY_MOTION + 0.3 * peak / (2 * _BUSY_MOTION))
    cutting = _clip(cuts_per_10s / _BUSY_CUTS)
    arousal = _clip(0.1 + 0.6 * busy + 0.3 * cutting)
    contrast = float(np.mean(col.contrast)) if col.contrast else _PLAIN_CONTRAST
    monochrome = sat < _MONOCHROME
    if monochrome:
        # No colour to read: a black-and-white picture is not sad for lacking it. Brightness,
        # contrast (a crisp, high-key frame against a murky one) and motion carry the mood.
        valence = _clip(
            0.5 + 0.6 * (bright - 0.4) + 0.5 * (contrast - _PLAIN_CONTRAST) + 0.3 * (busy - 0.3)
        )
    else:
        valence = _clip(0.5 + 0.5 * (bright - 0.45) + 0.4 * (sat - 0.3) + 0.4 * (warm - 0.5))
    centre = _TEMPO[0] + (_TEMPO[1] - _TEMPO[0]) * arousal
    pacing = Pacing(
        energy=round(arousal, 3),
        tempo_min=round(max(40.0, centre - _TEMPO_SPREAD), 1),
        tempo_max=round(centre + _TEMPO_SPREAD, 1),
    )
    words = mood_words(valence, arousal)

    events = [
        Event(c.time, "cut" if c.kind == "cut" else "fade", round(c.strength, 3)) for c in a.cuts
    ]
    events += _motion_peaks(a)
    events += [Event(t, "visual_beat", 0.3) for t in a.beats]
    events.sort(key=lambda e: (e.time, e.kind))

    scenes = []
    for s in a.scenes:
        m = _mean_in(a.motion.times, a.motion.energy, s.start, s.end)
        b = _mean_in(col.times, col.brightness, s.start, s.end) if col.times else bright
        pace = "busy" if m > _BUSY_MOTION * 0.6 else "still" if m < 0.08 else "moving"
        light = "bright" if b > 0.55 else "dark" if b < 0.3 else "mid-lit"
        scenes.append(SceneNote(s.start, s.end, f"{light}, {pace} shot ({s.end - s.start:.1f} s)"))

    reasoning = [
        ReasoningStep(
            f"{cuts_per_10s:.1f} hard cuts per 10 s and mean motion {motion:.2f} (90th "
            f"percentile {peak:.2f}), so arousal is "
            f"{'high' if arousal >= 0.6 else 'moderate' if arousal >= 0.35 else 'low'} "
            f"({arousal:.2f}).",
            [
                f"cuts_per_10s={cuts_per_10s:.2f}",
                f"motion_mean={motion:.3f}",
                f"motion_p90={peak:.3f}",
            ],
        ),  # fmt: skip
        ReasoningStep(
            f"Monochrome (saturation {sat:.2f}): brightness {bright:.2f}, contrast "
            f"{contrast:.2f} and motion put valence at {valence:.2f}: "
            f"{'light and lively' if valence >= 0.5 else 'dark or still'}."
            if monochrome
            else f"Brightness {bright:.2f}, saturation {sat:.2f} and warmth {warm:.2f} put "
            f"valence at {valence:.2f}: {'bright, open' if valence >= 0.5 else 'dark, muted'}.",
            [
                f"brightness={bright:.3f}",
                f"saturation={sat:.3f}",
                f"warmth={warm:.3f}",
                f"contrast={contrast:.3f}",
            ],
        ),  # fmt: skip
        ReasoningStep(
            f"Arousal {arousal:.2f} maps to {pacing.tempo_min:.0f}-{pacing.tempo_max:.0f} bpm; "
            f"the mood reads as {', '.join(words)}.",
            [f"arousal={arousal:.3f}", f"valence={valence:.3f}"],
        ),
        ReasoningStep(
            f"{len(hard)} hard cuts and {len(a.cuts) - len(hard)} fades over {dur:.1f} s in "
            f"{len(a.scenes)} scenes: the strong cuts are the hit points to land on bar lines.",
            [f"cut@{c.time:.2f}s" for c in hard[:12]] or ["no hard cuts"],
        ),
    ]
    return Brief(
        mood=Mood(round(valence, 3), round(arousal, 3), words),
        pacing=pacing,
        events=events,
        scenes=scenes,
        reasoning=reasoning,
        duration=a.duration,
        describer="signal",
    )


def _motion_peaks(a: VideoAnalysis, top: int = 8) -> list[Event]:
    """The strongest local maxima of motion, at least 2 s apart."""
    t, e = np.asarray(a.motion.times), np.asarray(a.motion.energy)
    if len(e) < 3:
        return []
    is_peak = (e[1:-1] > e[:-2]) & (e[1:-1] >= e[2:]) & (e[1:-1] > max(0.15, np.mean(e) * 1.5))
    order = np.flatnonzero(is_peak)[np.argsort(-e[1:-1][is_peak])] + 1
    chosen: list[int] = []
    for i in order:
        if all(abs(t[i] - t[j]) >= 2.0 for j in chosen):
            chosen.append(int(i))
        if len(chosen) == top:
            break
    return [Event(float(t[i]), "motion_peak", round(_clip(float(e[i])), 3)) for i in chosen]
