"""What a musician checks in the notes of a score: harmony, voice leading, range, texture, form.

Every measure is a pure function of a ``symusic.Score`` in ticks and returns (met, counted), so
that pieces pool by summing. Parts are the pitched tracks with notes (``craft.pitched``: drums
and the timpani that marks hits left out). The melody is the track named "melody...", else the
part of highest mean pitch; the bass (only with two parts or more) the track named "bass...",
else the other part of lowest mean pitch. Bars are laid from the time-signature map over the
parts' last note (as ``requests._bars``); a felt beat is the meter's beat unit, a dotted
quarter in 6/8, 9/8 and 12/8 (``words.pulse_ticks``). A note sounds at an instant t when
start <= t < end; a part attacks an instant when one of its onsets lies within a 32nd note of
it.

1. complete_harmony: felt beats [t, t+beat) in which at least 3 parts sound (a note of the part
   overlaps the beat by at least a quarter of it); one is complete when the pitch classes of
   the notes overlapping it by a quarter beat or more contain a major, minor, diminished or
   augmented triad (a seventh chord contains its triad; a seventh without its fifth does not).
2. melody_chord_tones: strong beats are the felt beats at even indices of the bar (0, 2, ...),
   only index 0 in bars of 3 (or an odd number of) felt beats. At each strong beat where the
   melody and another part sound, the chord of [beat, next strong beat or bar end) is the best
   of the 12 roots x {major, minor, diminished, dominant 7th, minor 7th} on the
   duration-weighted pitch-class histogram of every part's overlap with that window (score:
   weight inside the template minus weight outside; ties to fewer notes, then the lower root);
   the melody's highest sounding note counts when its pitch class is in it.
3. outer_parallels: at each onset of the melody or the bass, the melody's highest and the
   bass's lowest sounding pitch; consecutive such simultaneities where both sound and one pitch
   changed are moves; a move is parallel when both changed in the same direction and both
   intervals (melody - bass) mod 12 are 7 (fifths) or both 0 (octaves, unisons).
4. melody_on_top / bass_at_bottom: on a 16th-note grid, the steps where the melody (bass) and
   another part sound; it is right when the melody's highest pitch is >= every other part's
   highest (the bass's lowest <= every other part's lowest).
5. in_range: notes of each part inside ``instruments.playable(track.program)``.
6. bass_downbeats: bars in which the bass sounds; of those, the bars whose bar line it attacks.
7. texture_of(score, name): bars but the first and the last; the accompaniment is every part
   but the melody. waltz (3 felt beats): attacks on beats 1, 2 and 3, and the lowest pitch
   attacked on beat 1 below every pitch attacked on beats 2 and 3. march (2 or 4 felt beats,
   the two dotted quarters in 6/8): attacks on every beat, and the lowest pitch attacked on
   beats 1 and 3 below every pitch attacked on beats 2 and 4. jig (6/8): attacks on eighths 1,
   3, 4 and 6, the lowest on eighths 1 and 4 below every pitch on eighths 3 and 6. A piece has
   its texture when at least 70% of those bars match.
8. recurrence: the melody's two-bar windows (bars i, i+1) holding an onset; a window's exact key
   is its notes' (onset from the window's start, duration, pitch), its shape key the onsets and
   the signs of consecutive pitch steps; it recurs when a window j with |i - j| >= 2 has the
   same exact or shape key. phrase_returns: the four-bar windows recurring so at a distance of
   4 bars or more. Both only for pieces of 16 bars or more (None otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import symusic

from composer.evaluate.craft import pitched
from composer.music.harmony import chord_of
from composer.music.instruments import playable
from composer.music.words import pulse_ticks

Ratio = tuple[int, int]  # (met, counted)
TEXTURES = ("waltz", "march", "jig")
TEXTURE_SHARE = 0.70  # bars matching for a piece to have its texture
LONG = 16  # bars a piece needs before its recurrence is measured
TRIADS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8))


@dataclass(frozen=True)
class Bar:
    start: int
    end: int
    num: int
    den: int


@dataclass(frozen=True)
class _Part:
    start: np.ndarray
    end: np.ndarray
    pitch: np.ndarray

    @classmethod
    def of(cls, notes) -> _Part:
        a = notes.numpy()
        start = a["time"].astype(np.int64)
        order = np.lexsort((a["pitch"], start))  # the order a window's keys list notes in
        return cls(start[order], (start + a["duration"])[order], a["pitch"].astype(np.int64)[order])

    def overlap(self, lo: int, hi: int) -> np.ndarray:
        return np.clip(np.minimum(self.end, hi) - np.maximum(self.start, lo), 0, None)

    def extreme_at(self, times: np.ndarray, top: bool) -> np.ndarray:
        """The highest (``top``) or lowest pitch sounding at each of ``times``; NaN: silent."""
        out = np.full(len(times), np.nan)
        for k in range(0, len(times), 256):  # in blocks: times x notes stays small
            t = times[k : k + 256, None]
            on = (self.start <= t) & (self.end > t)
            vals = np.where(on, self.pitch, -1 if top else 128)
            ext = vals.max(1) if top else vals.min(1)
            out[k : k + 256] = np.where(on.any(1), ext, np.nan)
        return out


@dataclass(frozen=True)
class _Piece:
    tpq: int
    parts: list[_Part]
    programs: list[int]
    melody: int | None  # index into parts
    bass: int | None
    bars: list[Bar]

    def beats(self, bar: Bar) -> list[int]:
        step = pulse_ticks(bar.num, bar.den, self.tpq)
        return [bar.start + k * step for k in range(max(1, (bar.end - bar.start) // step))]

    def others(self, i: int) -> list[_Part]:
        return [p for k, p in enumerate(self.parts) if k != i]


def _piece(score: symusic.Score) -> _Piece:
    tracks = pitched(score)
    parts = [_Part.of(t.notes) for t in tracks]
    means = [float(p.pitch.mean()) for p in parts]

    def named(prefix: str, pick, among: list[int]) -> int | None:
        if not among:
            return None
        return next((i for i in among if tracks[i].name.startswith(prefix)),
                    pick(among, key=lambda i: means[i]))  # fmt: skip

    melody = named("melody", max, list(range(len(parts))))
    bass = named("bass", min, [i for i in range(len(parts)) if i != melody])
    return _Piece(score.ticks_per_quarter, parts, [t.program for t in tracks], melody, bass,
                  bars(score))  # fmt: skip


def bars(score: symusic.Score) -> list[Bar]:
    """The bars the time-signature map lays over the pitched parts' last note."""
    parts = pitched(score)
    end = max((n.end for t in parts for n in t.notes), default=0)
    tpq = score.ticks_per_quarter
    sigs = list(score.time_signatures) or [symusic.TimeSignature(0, 4, 4)]
    out, t = [], 0
    for i, ts in enumerate(sigs):
        stop = sigs[i + 1].time if i + 1 < len(sigs) else None
        length = ts.numerator * tpq * 4 // ts.denominator
        while t < end and (stop is None or t < stop):
            out.append(Bar(t, t + length, ts.numerator, ts.denominator))
            t += length
    return out


def _has_triad(pcs: set[int]) -> bool:
    return any({(r + i) % 12 for i in triad} <= pcs for r in range(12) for triad in TRIADS)


def complete_harmony(score: symusic.Score) -> Ratio:
    p = _piece(score)
    complete = counted = 0
    for bar in p.bars:
        beat = pulse_ticks(bar.num, bar.den, p.tpq)
        for t in p.beats(bar):
            held = [part.pitch[4 * part.overlap(t, t + beat) >= beat] for part in p.parts]
            if sum(len(h) > 0 for h in held) >= 3:
                counted += 1
                complete += _has_triad({int(x) % 12 for h in held for x in h})
    return complete, counted


def _strong(beats: list[int]) -> list[int]:
    return beats[:1] if len(beats) % 2 else beats[::2]


def melody_chord_tones(score: symusic.Score) -> Ratio:
    p = _piece(score)
    if len(p.parts) < 2:
        return 0, 0
    windows = []  # (strong beat, the next one or the bar's end)
    for bar in p.bars:
        strong = _strong(p.beats(bar))
        windows += zip(strong, [*strong[1:], bar.end], strict=True)
    instants = np.array([s for s, _ in windows], np.int64)
    tops = p.parts[p.melody].extreme_at(instants, top=True)
    others = np.array([o.extreme_at(instants, top=True) for o in p.others(p.melody)])
    heard = ~np.isnan(tops) & ~np.isnan(others).all(0)
    tones = 0
    for (s, until), top in zip(np.array(windows)[heard], tops[heard], strict=True):
        weights = np.zeros(12, np.int64)
        for part in p.parts:
            np.add.at(weights, part.pitch % 12, part.overlap(s, until))
        tones += int(top) % 12 in chord_of(weights)
    return tones, int(heard.sum())


def outer_parallels(score: symusic.Score) -> Ratio | None:
    p = _piece(score)
    if p.bass is None:
        return None
    melody, bass = p.parts[p.melody], p.parts[p.bass]
    times = np.unique(np.concatenate([melody.start, bass.start]))
    tops, lows = melody.extreme_at(times, True), bass.extreme_at(times, False)
    parallels = moves = 0
    for (m0, b0), (m1, b1) in pairwise(zip(tops, lows, strict=True)):
        if np.isnan([m0, b0, m1, b1]).any() or (m0 == m1 and b0 == b1):
            continue
        moves += 1
        same_way = np.sign(m1 - m0) == np.sign(b1 - b0) != 0
        intervals = {int(m0 - b0) % 12, int(m1 - b1) % 12}
        parallels += bool(same_way and intervals in ({7}, {0}))
    return parallels, moves


def _outer(score: symusic.Score, bass: bool) -> Ratio | None:
    p = _piece(score)
    i = p.bass if bass else p.melody
    if i is None or len(p.parts) < 2:
        return None
    step = max(1, p.tpq // 4)
    grid = np.arange(0, p.bars[-1].end if p.bars else 0, step)
    own = p.parts[i].extreme_at(grid, top=not bass)
    rest = np.array([o.extreme_at(grid, top=not bass) for o in p.others(i)])
    heard = ~np.isnan(own) & ~np.isnan(rest).all(0)
    with np.errstate(invalid="ignore"):  # NaN (silent) parts compare False: they do not count
        beaten = (rest < own) if bass else (rest > own)
    return int((heard & ~beaten.any(0)).sum()), int(heard.sum())


def melody_on_top(score: symusic.Score) -> Ratio | None:
    return _outer(score, bass=False)


def bass_at_bottom(score: symusic.Score) -> Ratio | None:
    return _outer(score, bass=True)


def in_range(score: symusic.Score) -> Ratio:
    p = _piece(score)
    inside = notes = 0
    for part, program in zip(p.parts, p.programs, strict=True):
        lo, hi = playable(program)
        inside += int(((part.pitch >= lo) & (part.pitch <= hi)).sum())
        notes += len(part.pitch)
    return inside, notes


def bass_downbeats(score: symusic.Score) -> Ratio | None:
    p = _piece(score)
    if p.bass is None:
        return None
    bass, near = p.parts[p.bass], p.tpq // 8
    attacked = sounding = 0
    for bar in p.bars:
        if ((bass.start < bar.end) & (bass.end > bar.start)).any():
            sounding += 1
            attacked += bool((np.abs(bass.start - bar.start) <= near).any())
    return attacked, sounding


def texture_of(score: symusic.Score, name: str) -> Ratio:
    """(bars in the pattern of ``name``, bars but the first and the last)."""
    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}")
    p = _piece(score)
    if p.melody is None or len(p.parts) < 2:
        return 0, max(0, len(p.bars) - 2)
    rest = p.others(p.melody)
    onsets = np.concatenate([o.start for o in rest])
    pitches = np.concatenate([o.pitch for o in rest])

    def attacked(t: int) -> np.ndarray:
        return pitches[np.abs(onsets - t) <= p.tpq // 8]

    matching = 0
    for bar in p.bars[1:-1]:
        beats = p.beats(bar)
        if name == "waltz" and len(beats) == 3:
            low, high = [beats[0]], beats[1:]
        elif name == "march" and len(beats) in (2, 4):
            low, high = beats[::2], beats[1::2]
        elif name == "jig" and (bar.num, bar.den) == (6, 8):
            eighth = p.tpq // 2
            low = [bar.start, bar.start + 3 * eighth]
            high = [bar.start + 2 * eighth, bar.start + 5 * eighth]
        else:
            continue
        hits = [attacked(t) for t in low + high]
        if all(len(h) for h in hits):
            under = np.concatenate(hits[: len(low)]).min()
            matching += bool(under < np.concatenate(hits[len(low) :]).min())
    return matching, max(0, len(p.bars) - 2)


def has_texture(ratio: Ratio) -> bool:
    return ratio[1] > 0 and ratio[0] >= TEXTURE_SHARE * ratio[1]


def _window_keys(p: _Piece, size: int) -> dict[int, tuple]:
    """Per window of ``size`` bars holding a melody onset: (exact key, shape key)."""
    melody = p.parts[p.melody]
    keys = {}
    for i in range(len(p.bars) - size + 1):
        lo, hi = p.bars[i].start, p.bars[i + size - 1].end
        inside = (melody.start >= lo) & (melody.start < hi)
        if not inside.any():
            continue
        onsets = tuple(int(x) for x in melody.start[inside] - lo)
        pitches = melody.pitch[inside]
        durations = melody.end[inside] - melody.start[inside]
        exact = tuple(zip(onsets, map(int, durations), map(int, pitches), strict=True))
        keys[i] = (exact, (onsets, tuple(int(s) for s in np.sign(np.diff(pitches)))))
    return keys


def _recurring(keys: dict[int, tuple], distance: int) -> int:
    seen: dict[tuple, list[int]] = {}
    for i, (exact, shape) in keys.items():
        seen.setdefault(("exact", exact), []).append(i)
        seen.setdefault(("shape", shape), []).append(i)
    return sum(
        any(abs(i - j) >= distance for j in seen[("exact", e)] + seen[("shape", s)])
        for i, (e, s) in keys.items()
    )


def recurrence(score: symusic.Score) -> Ratio | None:
    p = _piece(score)
    if p.melody is None or len(p.bars) < LONG:
        return None
    keys = _window_keys(p, 2)
    return _recurring(keys, 2), len(keys)


def phrase_returns(score: symusic.Score) -> int | None:
    p = _piece(score)
    if p.melody is None or len(p.bars) < LONG:
        return None
    return _recurring(_window_keys(p, 4), 4)


@dataclass
class Measures:
    """One piece's figures, each (met, counted); None where the piece has no such thing."""

    bars: int
    complete_harmony: Ratio
    melody_chord_tones: Ratio
    outer_parallels: Ratio | None
    melody_on_top: Ratio | None
    bass_at_bottom: Ratio | None
    in_range: Ratio | None  # None: not measured (a corpus piece's programs are roles)
    bass_downbeats: Ratio | None
    recurrence: Ratio | None
    phrase_returns: int | None


def measure(score: symusic.Score, *, ranges: bool = True) -> Measures:
    """Every figure but the textures; ``ranges=False`` leaves out in_range."""
    return Measures(
        bars=len(bars(score)), complete_harmony=complete_harmony(score),
        melody_chord_tones=melody_chord_tones(score), outer_parallels=outer_parallels(score),
        melody_on_top=melody_on_top(score), bass_at_bottom=bass_at_bottom(score),
        in_range=in_range(score) if ranges else None, bass_downbeats=bass_downbeats(score),
        recurrence=recurrence(score), phrase_returns=phrase_returns(score),
    )  # fmt: skip
