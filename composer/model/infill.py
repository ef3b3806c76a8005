"""Infilling: the token layout the ``infill`` adapter reads, the bars after a span first.

    BOS Style Key  <the bars after the span>  EOS  <the bars before it>  <the span's bars>

Suffix-prefix-middle order, as fill-in-the-middle is laid out for code models: the span is
written straight after the bars before it, so the decoder continues the way it was pre-trained
to, having read first what the span must lead into. EOS, which ends every training piece,
closes the bars after: the base never reads past it, so the adapter learns the layout without
a token the base's vocabulary lacks. The grammar forces the span's bar count and controls, so
nothing marks where the span ends. A span that ends the piece has no bars after it (the layout
is then ``BOS Style Key EOS <before> <span>``); one at the start has none before.

The decoder reads the context as its primer (composer.model.decode), so the layout is all
a caller builds; the training examples (composer.train.infill) are cut to the same budgets.
Of the candidates decoded, an edit keeps one whose melody steps into the bars after it, in the
key those bars and the ones before are heard in (``preference``).
"""

from __future__ import annotations

import numpy as np

from composer.music.keys import find_key
from composer.tokens.tokenizer import DURATION, PITCH, POSITION, PROGRAM, VELOCITY

ADAPTER = "infill"
NEAR = 8  # bars each side offered to the layout, which cuts them to its token budgets
# Token budgets (the decoder's primer must leave half its 1024-token context to the span).
MAX_AFTER = 192  # the bars after the span: the nearest first
MAX_BEFORE = 256  # the bars before it: the nearest last
CANDIDATES = 4  # spans decoded per edit, the least: ``preference`` needs some to choose from
# Nats taken from a pitch the decoder writes where it is dissonant with a kept part sounding
# there (constraints.Against): chosen on validation spans (evals/RESULTS.md, "Parts").
AGAINST = 0.5
# Semitones: a melody that moves into the bars after by a step or a minor third connects.
CONNECTED = 3


def whole_bars(ids: list[int], bar_id: int, limit: int, keep_start: bool) -> list[int]:
    """The longest run of ``ids``' whole bars within ``limit`` tokens, taken from its start
    (``keep_start``) or its end."""
    starts = [i for i, t in enumerate(ids) if t == bar_id] + [len(ids)]
    if keep_start:
        ends = [e for e in starts[1:] if e <= limit]
        return list(ids[: ends[-1]]) if ends else []
    firsts = [s for s in starts[:-1] if len(ids) - s <= limit]
    return list(ids[firsts[0] :]) if firsts else []


def context(before: list[int], after: list[int], bar_id: int, eos_id: int) -> list[int]:
    """The primer that asks for the bars between ``before`` and ``after`` (body tokens of
    whole bars, no header), each cut to its budget by whole bars."""
    near_after = whole_bars(after, bar_id, MAX_AFTER, keep_start=True)
    near_before = whole_bars(before, bar_id, MAX_BEFORE, keep_start=False)
    return near_after + [eos_id] + near_before


def given_notes(tok, ids: list[int], roles: set[int]) -> tuple:
    """The notes of ``ids`` (whole bars) in ``roles``, as the decoding grammar takes notes given
    in advance (GenerationRequest.kept): per bar, (position, their Program Pitch Velocity
    Duration tokens)."""
    bars: list[list[tuple[int, list[int]]]] = []
    role = -1
    for i in ids:
        k = tok.kind[i]
        if i == tok.bar_id:
            bars.append([])
        elif k == POSITION:
            bars[-1].append((int(tok.value[i]), []))
        elif k in (PROGRAM, PITCH, VELOCITY, DURATION):
            role = int(tok.value[i]) if k == PROGRAM else role
            if role in roles:
                bars[-1][-1][1].append(i)
    return tuple(tuple((pos, tuple(ts)) for pos, ts in bar if ts) for bar in bars)


def sounding_notes(tok, ids: list[int], roles: set[int]) -> tuple:
    """The notes of ``ids`` (whole bars of one meter) in ``roles``, as the decoder's own pitches
    are written against them (GenerationRequest.against): per bar, (start, end, pitch) in steps
    from its bar line, a note held from an earlier bar starting before it."""
    notes, total = tok.notes(ids)
    bars = sum(i == tok.bar_id for i in ids)
    length = total // max(bars, 1)
    out = []
    for b in range(bars):
        lo = b * length
        out.append(tuple((t - lo, t + d - lo, p) for t, r, p, d in notes
                         if r in roles and t < lo + length and t + d > lo))  # fmt: skip
    return tuple(out)


def pitch_classes(tok, ids: list[int]) -> np.ndarray:
    """(12,) duration-weighted pitch classes of the notes of ``ids``."""
    weights = np.zeros(12)
    for _, _, pitch, duration in tok.notes(ids)[0]:
        weights[pitch % 12] += duration
    return weights


def local_key(tok, before: list[int], after: list[int]) -> tuple[int, str]:
    """The key the bars around a span fit best: the key its music is heard in there."""
    return find_key(pitch_classes(tok, before) + pitch_classes(tok, after))


def melody_exit(tok, span: list[int], after: list[int]) -> int | None:
    """Semitones from the span's last melody note to the first melody note of the bars after
    it (the melody: the lowest role either writes), or None where either has none."""
    inside = [(r, p) for _, r, p, _ in tok.notes(span)[0]]
    later = [(r, p) for _, r, p, _ in tok.notes(after)[0]]
    if not inside or not later:
        return None
    melody = min(r for r, _ in inside + later)
    mine = [p for r, p in inside if r == melody]
    next_ = [p for r, p in later if r == melody]
    return abs(next_[0] - mine[-1]) if mine and next_ else None


def preference(tok, cand, key: tuple[int, str], after: list[int]) -> tuple:
    """How a span's candidates are ranked, best highest: a melody that connects to the bars
    after it, heard in ``key`` (local_key: the key of the bars around it), nearest the
    controls, then the likeliest."""
    step = melody_exit(tok, cand.ids, after)
    return (
        step is None or step <= CONNECTED,
        tuple(find_key(pitch_classes(tok, cand.ids))) == tuple(key),
        round(cand.adherence, 2),
        cand.log_likelihood,
    )
