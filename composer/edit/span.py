"""Regenerating a span of bars: the infill adapter writes them between the bars around them.

The score's parts become decoder roles (composer's own tracks by their names, any other
score's pitched tracks by mean pitch: the highest the melody, the lowest the bass). The bars
after the span and the bars before it, in its meter and key, are the context the decoder
reads (composer.model.infill's layout); each bar of the span keeps the controls measured from
its own notes, unless the request moves them ("more intense": the top intensity, "sparser":
the lowest, a dance: its style). Of the candidates decoded, those whose chosen tracks move the
way the words ask (more notes, or fewer) come first. Only the chosen tracks' notes attacked in
the span are replaced, played at the level of the notes they replace (a step louder or softer
as asked); every other note stays as it was. Inside the span the decoder reads the kept
tracks whose roles lie below the chosen ones (the melody, for an accompaniment written again)
as it goes: they are forced where they stand (constraints.ScoreGrammar's given notes), so the
new voices are written against them; it writes the rest of the texture itself, and the kept
tracks keep their own notes. Every kept part, above or below, is also heard where each pitch
is written: pitches dissonant with a kept note sounding there are made less likely
(constraints.Against).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import symusic

from composer.errors import ComposerError
from composer.music.harmony import CHORDS, consonant_share, window_chords
from composer.music.instruments import playable
from composer.music.qualities import forms, read_qualities
from composer.music.roles import BASS, CHORDS_TRACK, MELODY, ROLES
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, no_progress
from composer.types import BarControls, GenerationRequest, Plan

INNER = 1  # the inner role a chordal part's middle notes take
VELOCITY_STEP = 8  # how much louder (softer) a more (less) intense span is played


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


def track_roles(score: symusic.Score) -> dict[int, tuple[int, ...]]:
    """Decoder roles per pitched track index: by the role word of composer's track names, else
    by mean pitch (melody highest, bass lowest, inner parts between). A score that is one
    part of chords (a piano's two hands) is written as melody, inner voice and bass, which
    _role_score separates by what sounds at each attack."""
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes)
               and t.name != CHORDS_TRACK]  # fmt: skip
    named = {i: (ROLES.index(w),) for i in pitched
             if (w := score.tracks[i].name.split(" (")[0]) in ROLES}  # fmt: skip
    if len(named) == len(pitched):
        return named
    if len(pitched) == 1 and _chordal(score.tracks[pitched[0]].notes):
        return {pitched[0]: (MELODY, INNER, BASS)}
    order = sorted(pitched, key=lambda i: -np.mean([n.pitch for n in score.tracks[i].notes]))
    roles = {}
    for k, i in enumerate(order):
        roles[i] = (MELODY if k == 0 else BASS if k == len(order) - 1 else min(k, BASS - 1),)
    return roles


def _chordal(notes) -> bool:
    """Whether a third or more of the notes are attacked while another note sounds."""
    end, under = -1, 0
    for n in sorted(notes, key=lambda n: n.time):
        under += n.time < end
        end = max(end, n.time + n.duration)
    return under >= len(notes) / 3


def _voices(notes) -> dict[int, list]:
    """A chordal part's notes as melody (the highest sounding at its attack), bass (the
    lowest) and inner voice (the rest); a note sounding alone goes by its register."""
    middle = float(np.median([n.pitch for n in notes]))
    out: dict[int, list] = {MELODY: [], INNER: [], BASS: []}
    active: list = []
    order = sorted(notes, key=lambda n: (n.time, n.pitch))
    k = 0
    while k < len(order):  # one attack (the notes starting together) at a time
        j = k
        while j < len(order) and order[j].time == order[k].time:
            j += 1
        group = order[k:j]
        active = [a for a in active if a.end > group[0].time] + group  # what sounds now
        top, bottom = max(a.pitch for a in active), min(a.pitch for a in active)
        for n in group:
            if top == bottom:
                role = MELODY if n.pitch >= middle else BASS
            else:
                role = MELODY if n.pitch == top else BASS if n.pitch == bottom else INNER
            out[role].append(n)
        k = j
    return out


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
    scale: tuple[int, ...] | None = None,
    against: float | None = None,
) -> list[symusic.Score]:
    """``n`` versions of ``score`` whose ``tracks`` are written anew in bars ``bars`` (0-based,
    end exclusive); ``starts``: the tick of every bar line (and the end) of ``score``;
    ``scale``: the degrees the key bias keeps to, if not the key's own; ``against``: the
    penalty on pitches dissonant with the kept parts sounding (None: infill.AGAINST)."""
    from composer.model.checkpoint import cached_checkpoint
    from composer.model.decode import decode
    from composer.model.infill import (
        ADAPTER,
        AGAINST,
        CANDIDATES,
        NEAR,
        context,
        given_notes,
        local_key,
        preference,
        sounding_notes,
    )  # fmt: skip

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
    ckpt = cached_checkpoint(DEFAULT_MODEL, ADAPTER)
    tok = ckpt.tokenizer
    roled = _role_score(score, roles)
    first, last = lo, hi  # the context: bars of the span's meter on each side
    while first > 0 and lo - first < NEAR and _meter_at(score, starts[first - 1]) == meter:
        first -= 1
    while last < len(starts) - 1 and last - hi < NEAR and _meter_at(score, starts[last]) == meter:
        last += 1
    before = _body(tok, _cut(roled, starts[first], starts[lo]), style, key, lo - first)
    after = _body(tok, _cut(roled, starts[hi], starts[last]), style, key, last - hi)
    primer = context(before, after, tok.bar_id, tok.eos_id)
    span = _body(tok, _cut(roled, starts[lo], starts[hi]), style, key, hi - lo)
    texture = {r for rs in roles.values() for r in rs}
    chosen = {r for i in tracks for r in roles[i]}
    # Kept parts in roles below the chosen ones are given: at every onset the decoder reads
    # them before the notes it writes (the corpus lists roles upwards). Parts above would come
    # after, unseen where they attack together, and writing against them measured worse than
    # writing them afresh (composer eval infill), so the decoder writes those too and the
    # edit drops them.
    below = {r for r in texture - chosen if r < min(chosen)}
    written = tuple(sorted(texture - below))
    given = given_notes(tok, span, below)[: hi - lo]
    # Every kept part is heard where the decoder writes its own pitches, above or below.
    heard = sounding_notes(tok, span, texture - chosen)[: hi - lo]
    measured = tok.measure_controls(span, n_roles_hint=len(texture))
    measured = (measured + [BarControls(1)] * (hi - lo))[: hi - lo]
    # "More intense" asks for the top level, "sparser" for the lowest: one level either way
    # leaves the decoder's spread of densities wider than the step.
    controls = tuple(BarControls(c.intensity if asked.intensity == 0 else 3 if asked.intensity > 0
                                 else 0, c.hit) for c in measured)  # fmt: skip
    request = GenerationRequest(
        style=style, key=key, meter=meter, controls=controls,
        roles=written, seed=seed, candidates=max(2 * n, CANDIDATES),
        primer=tuple(primer), cadence=hi == len(starts) - 1, kept=given, scale=scale,
        against=heard, against_penalty=AGAINST if against is None else against,
    )  # fmt: skip
    result = decode(ckpt, request, progress)
    had = _onsets(score, tracks, starts[lo], starts[hi])
    heard = local_key(tok, before, after)
    spliced = []
    for cand in result.candidates:
        edited = _splice(score, tok.decode(cand.ids), roles, tracks, starts[lo], starts[hi],
                         asked.intensity)  # fmt: skip
        # Candidates that move the span the way the words ask come first ("sparser": fewer
        # notes than it had), then those that sound best against the tracks kept (read, but
        # only up to each note written), then the infill's own preference.
        onsets = _onsets(edited, tracks, starts[lo], starts[hi])
        moved = np.sign(onsets - had)
        # A sparser span still plays: silence is not what "sparser" asks for.
        rank = ((asked.intensity == 0 or moved == asked.intensity) and (onsets > 0 or had == 0),
                round(consonance(edited, tracks, starts[lo], starts[hi]), 1),
                *preference(tok, cand, heard, after))  # fmt: skip
        spliced.append((rank, edited))
    spliced.sort(key=lambda x: x[0], reverse=True)
    return [edited for _, edited in spliced[:n]]


PHRASE = 8  # bars re-harmonised at a time: a phrase, within the decoder's context
CHOICES = 4  # candidate harmonies per phrase, of which the one that fits the melody best is kept


def reharmonise(
    score: symusic.Score,
    seed: int,
    plan: Plan | None = None,
    progress: ProgressFn = no_progress,
    melody: int | None = None,
) -> tuple[symusic.Score, str]:
    """``score``, moved into a minor key degree by degree, with its accompaniment (every
    pitched track but the melody) written again by the infill adapter against the melody in
    each phrase (up to PHRASE bars) where the move left a bar whose accompaniment sounds a
    minor dominant, the chord the minor's cadences avoid; chord symbols are then named from
    the notes. The decoder keeps to the harmonic minor there (the corpus's modal minor tunes
    mostly lack the leading tone), and of its candidates the one whose chords hold most of
    the melody's beats is kept.
    ``melody``: its track, as found before the move (moved degrees can reorder parts of
    near register); else the highest part. Returns the score and a line saying what was
    written again, or why nothing was."""
    from composer.model.constraints import HARMONIC_MINOR
    from composer.music.midi import bar_lines

    roles = track_roles(score)
    if melody is None:
        melody = next((i for i, rs in roles.items() if MELODY in rs), None)
    if len(roles) < 2 or melody not in roles or len(roles[melody]) > 1:
        return score, "the harmony follows the melody's degrees: the score has no separate melody"
    accompaniment = [i for i in roles if i != melody]
    tonic, mode = _key(score, None)
    if mode != "minor":
        return score, "the harmony follows the melody's degrees, which the major keeps right"
    starts = bar_lines(score)
    phrases, lo = [], 0
    while lo < len(starts) - 1:  # phrases of up to PHRASE bars, each in one meter
        hi = lo + 1
        while hi < min(lo + PHRASE, len(starts) - 1) and \
                _meter_at(score, starts[hi]) == _meter_at(score, starts[lo]):  # fmt: skip
            hi += 1
        phrases.append((lo, hi))
        lo = hi
    minor_v = [{(tonic + 7 + i) % 12 for i in c} for c in (CHORDS[1], CHORDS[4])]
    out, written, left = score, [], []
    for k, (lo, hi) in enumerate(phrases):
        if any(c in minor_v for c in window_chords(out, accompaniment, starts[lo : hi + 1])):
            try:
                # Not drawn to the melody's notes: where it sounds the natural seventh (as a
                # melody moved by degree over a minor v does), the leading tone asked for is a
                # semitone from it; of the candidates, the one whose chords hold the melody
                # most is kept.
                cands = regenerate(out, (lo, hi), accompaniment, None, seed + k, CHOICES,
                                   plan, starts=starts, scale=HARMONIC_MINOR,
                                   against=0.0)  # fmt: skip
                out = max(cands, key=lambda c: _chord_tones(c, melody, starts[lo], starts[hi]))
                written.append(f"{lo + 1}-{hi}")
            except ComposerError as e:  # a meter the decoder does not write
                left.append(f"bars {lo + 1}-{hi} ({e})")
        progress("reharmonise", k + 1, len(phrases))
    names = ", ".join(score.tracks[i].name for i in accompaniment)
    line = (
        f"{names}: written again against the melody in bars {', '.join(written)}, where "
        "moving the degrees left a minor dominant"
        if written
        else "moving the degrees left no minor dominant: the accompaniment is as they moved"
    )
    if left:
        line += "; left as the degrees moved: " + "; ".join(left)
    return _renamed_chords(out), line


def _beats(score: symusic.Score, melody: int, lo: int, hi: int) -> list:
    """(the chord all pitched parts sound, the melody's top pitch sounding at its start or
    None) for each quarter note in [lo, hi); the chord is None where nothing sounds."""
    edges = list(range(lo, hi, score.ticks_per_quarter)) + [hi]
    chords = window_chords(score, range(len(score.tracks)), edges)
    tune = [(n.time, n.end, n.pitch) for n in score.tracks[melody].notes
            if n.time < hi and n.end > lo]  # fmt: skip
    tops = [max((p for on, end, p in tune if on <= beat < end), default=None)
            for beat in edges[:-1]]  # fmt: skip
    return list(zip(chords, tops, strict=True))


def _chord_tones(score: symusic.Score, melody: int, lo: int, hi: int) -> float:
    """Share of the quarter notes in [lo, hi) that start under a melody note whose pitch is a
    tone of the chord all pitched parts sound in that quarter."""
    heard = [(c, top) for c, top in _beats(score, melody, lo, hi) if c and top is not None]
    return sum(top % 12 in c for c, top in heard) / len(heard) if heard else 0.0


def _renamed_chords(score: symusic.Score) -> symusic.Score:
    """``score`` with each chord symbol naming the chord its pitched notes make until the next
    symbol (the arranger's symbols), where they make one it has a name for."""
    from composer.edit.transforms import chord_name

    out = score.copy()
    for t in out.tracks:
        if t.name != CHORDS_TRACK or not len(t.lyrics):
            continue
        times = [x.time for x in t.lyrics] + [score.end()]
        chords = window_chords(score, range(len(score.tracks)), times)
        for lyric, tones in zip(t.lyrics, chords, strict=True):
            if tones is not None and (name := chord_name(tones)) is not None:
                lyric.text = name
    return out


def consonance(score: symusic.Score, tracks: list[int], lo: int, hi: int) -> float:
    """Share of ``tracks``' attacks in [lo, hi) consonant with the other pitched tracks."""
    others = [
        (n.time, n.end, n.pitch)
        for i, t in enumerate(score.tracks)
        if i not in tracks and not t.is_drum
        for n in t.notes
        if n.time < hi and n.end > lo
    ]
    attacks = [(n.time, n.pitch) for i in tracks for n in score.tracks[i].notes
               if lo <= n.time < hi]  # fmt: skip
    share = consonant_share(attacks, others)
    return 1.0 if share is None else share


def _onsets(score: symusic.Score, tracks: list[int], lo: int, hi: int) -> int:
    return sum(len({n.time for n in score.tracks[i].notes if lo <= n.time < hi}) for i in tracks)


def _key(score: symusic.Score, plan: Plan | None) -> tuple[int, str]:
    """The key the score's signature states (a key change rewrites it), else the plan's, else
    the key its notes fit."""
    from composer.edit.transforms import score_key

    if len(score.key_signatures) or plan is None:
        return tuple(score_key(score))
    return tuple(plan.key.value)


def _meter_at(score: symusic.Score, t: int) -> tuple[int, int]:
    sigs = [ts for ts in score.time_signatures if ts.time <= t]
    ts = sigs[-1] if sigs else None
    return (ts.numerator, ts.denominator) if ts else (4, 4)


def _role_score(score: symusic.Score, roles: dict[int, tuple[int, ...]]) -> symusic.Score:
    """The pitched parts as one track per role (program = role id), as the tokenizer reads,
    in the score's meters (which _cut reads)."""
    parts: dict[int, list] = {}
    for i, rs in roles.items():
        notes = list(score.tracks[i].notes)
        split = _voices(notes) if len(rs) > 1 else {rs[0]: notes}
        for role, ns in split.items():
            parts.setdefault(role, []).extend(ns)
    out = symusic.Score(score.ticks_per_quarter)
    out.time_signatures = score.time_signatures.copy()
    for role in sorted(parts):
        t = symusic.Track(ROLES[role], role, False)
        t.notes.extend(sorted(parts[role], key=lambda n: (n.time, n.pitch)))
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


def _body(tok, score: symusic.Score, style: str, key: tuple[int, str], bars: int) -> list[int]:
    """Token ids of ``score``'s ``bars`` bars with their measured controls (no header, no EOS);
    silent bars at its end are written as bars with no notes, so the count holds."""
    ids = tok.encode(score, style, key) if any(len(t.notes) for t in score.tracks) else []
    start = ids.index(tok.bar_id) if tok.bar_id in ids else len(ids)
    body = ids[start:-1] if ids and ids[-1] == tok.eos_id else ids[start:]
    missing = bars - body.count(tok.bar_id)
    if missing <= 0:
        return body
    ts = score.time_signatures[0]
    meter = tok.vocab.get(f"TimeSig_{ts.numerator}/{ts.denominator}")
    if meter is None:
        raise ComposerError(None, f"the decoder does not write {ts.numerator}/{ts.denominator}")
    return body + [tok.bar_id, meter, *tok.control_ids(BarControls(0))] * missing


def _splice(score, written, roles, tracks, lo, hi, intensity) -> symusic.Score:
    """``score`` with ``tracks``' notes attacked in [lo, hi) replaced by the role's notes of
    ``written`` (ticks from 0 at its own resolution), played at the level around the span."""
    out = score.copy()
    scale = score.ticks_per_quarter / written.ticks_per_quarter
    by_role = {t.program: t for t in written.tracks}
    for i in tracks:
        track = out.tracks[i]
        kept, around, replaced = [], [], []
        for n in track.notes:  # a note attacked before the span is kept whole, held or not
            if n.time < lo or n.time >= hi:
                kept.append(n)
                around.append(n.velocity)
            else:
                replaced.append(n.velocity)
        # The span's own level (else the track's around it), a step up or down as asked.
        level = int(np.median(replaced or around)) if replaced or around else 80
        level = int(np.clip(level + intensity * VELOCITY_STEP, 20, 120))
        low, high = playable(track.program)
        new = []
        written_notes = [n for r in roles[i] if r in by_role for n in by_role[r].notes]
        for n in written_notes:
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
