"""Regenerating a span of bars: the decoder writes them again after the bars before them.

The score's parts become decoder roles (composer's own tracks by their names, any other
score's pitched tracks by mean pitch: the highest the melody, the lowest the bass); the bars
before the span, in its meter and key, are the primer the decoder reads; each bar of the span
keeps the controls measured from its own notes, unless the request moves them ("more intense":
the top intensity, "sparser": the lowest, a dance: its style). Of the candidates decoded,
those whose chosen tracks move the way the words ask (more notes, or fewer) come first. Only
the chosen tracks' notes attacked in the span are replaced, played at the level of the notes
around it (a step louder or softer as asked); every other note stays as it was.

This is left-to-right continuation: the decoder does not read the bars after the span, so a
seam at the span's end is only as smooth as its cadence. Infilling, which reads both sides,
is the model this module's callers are written for.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import symusic

from composer.errors import ComposerError
from composer.music.instruments import playable
from composer.music.keys import find_key, key_from_signature
from composer.music.qualities import forms, read_qualities
from composer.music.roles import BASS, CHORDS_TRACK, MELODY, ROLES
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, no_progress
from composer.types import BarControls, GenerationRequest, Plan

PRIMER_BARS = 2  # bars before the span the decoder reads (fewer where the context is short)
MAX_PRIMER = 600  # tokens: the context holds 1024 with the span's own bars
VELOCITY_STEP = 8  # how much louder (softer) a more (less) intense span is played
CANDIDATES = 4  # decoded at the least, to choose those that move the way the words ask


@dataclasses.dataclass(frozen=True)
class SpanRequest:
    """What a span edit asks of the decoder, read from the request's words."""

    intensity: int  # levels to move each bar's intensity (-1, 0, +1)
    style: str | None  # a style a dance or form names ("in the style of a march")
    words: str


def read_span_request(prompt: str | None) -> SpanRequest:
    """``prompt``'s intensity and style, from the request reader's tables."""
    text = prompt or ""
    q = read_qualities(text)
    move = 0
    for r in q.readings:
        if r.attribute == "intensity" or r.attribute == "density":
            move += (
                1 if r.value in ("more", "dense") else -1 if r.value in ("less", "sparse") else 0
            )
    style = next((forms()[r.value].style for r in q.readings if r.attribute == "form"), None)
    return SpanRequest(int(np.clip(move, -1, 1)), style, text)


def track_roles(score: symusic.Score) -> dict[int, int]:
    """Decoder role per pitched track index: by the role word of composer's track names, else
    by mean pitch (melody highest, bass lowest, inner parts between)."""
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes)
               and t.name != CHORDS_TRACK]  # fmt: skip
    named = {i: ROLES.index(w) for i in pitched
             if (w := score.tracks[i].name.split(" (")[0]) in ROLES}  # fmt: skip
    if len(named) == len(pitched):
        return named
    order = sorted(pitched, key=lambda i: -np.mean([n.pitch for n in score.tracks[i].notes]))
    roles = {}
    for k, i in enumerate(order):
        roles[i] = MELODY if k == 0 else BASS if k == len(order) - 1 else min(k, BASS - 1)
    return roles


def regenerate(
    score: symusic.Score,
    bars: tuple[int, int],
    tracks: list[int],
    prompt: str | None,
    seed: int,
    n: int,
    plan: Plan | None = None,
    progress: ProgressFn = no_progress,
    starts: list[int] | None = None,
) -> list[symusic.Score]:
    """``n`` versions of ``score`` whose ``tracks`` are written anew in bars ``bars`` (0-based,
    end exclusive); ``starts``: the tick of every bar line (and the end) of ``score``."""
    from composer.model.checkpoint import cached_checkpoint
    from composer.model.decode import decode

    if starts is None:
        from composer.music.midi import bar_lines

        starts = bar_lines(score)
    lo, hi = bars
    asked = read_span_request(prompt)
    roles = track_roles(score)
    if missing := [i for i in tracks if i not in roles]:
        name = score.tracks[missing[0]].name
        raise ComposerError(None, f"track {name!r} has no notes the decoder can write (drums, "
                                  "chord symbols or silence)")  # fmt: skip
    style = asked.style or (plan.style.value if plan else "other")
    key = _key(score, plan)
    meter = _meter_at(score, starts[lo])
    if any(starts[lo] < ts.time < starts[hi] for ts in score.time_signatures):
        raise ComposerError(None, f"bars {lo + 1}-{hi} cross a change of meter: edit the bars "
                                  "of each meter apart")  # fmt: skip
    ckpt = cached_checkpoint(DEFAULT_MODEL, None)
    tok = ckpt.tokenizer
    roled = _role_score(score, roles)
    first = lo
    while first > 0 and lo - first < PRIMER_BARS and _meter_at(score, starts[first - 1]) == meter:
        first -= 1
    primer = _body(tok, _cut(roled, starts[first], starts[lo]), style, key) if first < lo else []
    while len(primer) > MAX_PRIMER:  # drop whole bars from the front until it fits
        primer = primer[primer.index(tok.bar_id, 1) :] if tok.bar_id in primer[1:] else []
    span = _body(tok, _cut(roled, starts[lo], starts[hi]), style, key)
    measured = tok.measure_controls(span, n_roles_hint=len(set(roles.values())))
    measured = (measured + [BarControls(1)] * (hi - lo))[: hi - lo]
    # "More intense" asks for the top level, "sparser" for the lowest: one level either way
    # leaves the decoder's spread of densities wider than the step.
    controls = tuple(BarControls(c.intensity if asked.intensity == 0 else 3 if asked.intensity > 0
                                 else 0, c.hit) for c in measured)  # fmt: skip
    request = GenerationRequest(
        style=style, key=key, meter=meter, controls=controls,
        roles=tuple(sorted(set(roles.values()))), seed=seed, candidates=max(2 * n, CANDIDATES),
        primer=tuple(primer), cadence=hi == len(starts) - 1,
    )  # fmt: skip
    result = decode(ckpt, request, progress)
    before = _onsets(score, tracks, starts[lo], starts[hi])
    spliced = []
    for cand in result.candidates:
        edited = _splice(score, tok.decode(cand.ids), roles, tracks, starts[lo], starts[hi],
                         asked.intensity)  # fmt: skip
        # Candidates that move the span the way the words ask come first ("sparser": fewer
        # notes than it had), then those nearest the controls, then the likeliest.
        moved = np.sign(_onsets(edited, tracks, starts[lo], starts[hi]) - before)
        spliced.append(((asked.intensity == 0 or moved == asked.intensity),
                        round(cand.adherence, 2), cand.log_likelihood, edited))  # fmt: skip
    spliced.sort(key=lambda x: x[:3], reverse=True)
    return [edited for *_, edited in spliced[:n]]


def _onsets(score: symusic.Score, tracks: list[int], lo: int, hi: int) -> int:
    return sum(len({n.time for n in score.tracks[i].notes if lo <= n.time < hi}) for i in tracks)


def _key(score: symusic.Score, plan: Plan | None) -> tuple[int, str]:
    """The plan's key, else the score's first key signature, else the key its notes fit."""
    if plan is not None:
        return tuple(plan.key.value)
    if len(score.key_signatures):
        ks = score.key_signatures[0]
        return key_from_signature(ks.key, ks.tonality)
    weights = np.zeros(12)
    for t in score.tracks:
        if not t.is_drum:
            for n in t.notes:
                weights[n.pitch % 12] += n.duration
    return find_key(weights)


def _meter_at(score: symusic.Score, t: int) -> tuple[int, int]:
    sigs = [ts for ts in score.time_signatures if ts.time <= t]
    ts = sigs[-1] if sigs else None
    return (ts.numerator, ts.denominator) if ts else (4, 4)


def _role_score(score: symusic.Score, roles: dict[int, int]) -> symusic.Score:
    """The pitched parts as one track per role (program = role id), as the tokenizer reads."""
    out = symusic.Score(score.ticks_per_quarter)
    for role in sorted(set(roles.values())):
        t = symusic.Track(ROLES[role], role, False)
        for i, r in roles.items():
            if r == role:
                t.notes.extend(score.tracks[i].notes)
        t.notes.sort(key=lambda n: (n.time, n.pitch))
        out.tracks.append(t)
    return out


def _cut(score: symusic.Score, lo: int, hi: int) -> symusic.Score:
    """The notes attacked in [lo, hi), from time 0, cut at ``hi``, in the meter at ``lo``."""
    out = symusic.Score(score.ticks_per_quarter)
    out.time_signatures.append(symusic.TimeSignature(0, *_meter_at(score, lo)))
    for t in score.tracks:
        c = symusic.Track(t.name, t.program, t.is_drum)
        c.notes.extend(symusic.Note(n.time - lo, min(n.duration, hi - n.time), n.pitch, n.velocity)
                       for n in t.notes if lo <= n.time < hi)  # fmt: skip
        out.tracks.append(c)
    return out


def _body(tok, score: symusic.Score, style: str, key: tuple[int, str]) -> list[int]:
    """Token ids of ``score``'s bars with their measured controls (no header, no EOS)."""
    if not any(len(t.notes) for t in score.tracks):
        return []
    ids = tok.encode(score, style, key)
    start = ids.index(tok.bar_id) if tok.bar_id in ids else len(ids)
    return ids[start:-1] if ids and ids[-1] == tok.eos_id else ids[start:]


def _splice(score, written, roles, tracks, lo, hi, intensity) -> symusic.Score:
    """``score`` with ``tracks``' notes attacked in [lo, hi) replaced by the role's notes of
    ``written`` (ticks from 0 at its own resolution), played at the level around the span."""
    out = score.copy()
    scale = score.ticks_per_quarter / written.ticks_per_quarter
    by_role = {t.program: t for t in written.tracks}
    for i in tracks:
        track = out.tracks[i]
        kept, around = [], []
        for n in track.notes:  # a note attacked before the span is kept whole, held or not
            if n.time < lo or n.time >= hi:
                kept.append(n)
                around.append(n.velocity)
        level = int(np.median(around)) if around else 80
        level = int(np.clip(level + intensity * VELOCITY_STEP, 20, 120))
        low, high = playable(track.program)
        new = []
        source = by_role.get(roles[i])
        for n in source.notes if source is not None else ():
            t = lo + round(n.time * scale)
            if t >= hi:
                continue
            p = n.pitch
            while p > high:
                p -= 12
            while p < low:
                p += 12
            new.append(symusic.Note(t, max(1, min(round(n.duration * scale), hi - t)), p, level))
        track.notes = sorted(kept + new, key=lambda n: (n.time, n.pitch))
    return out
