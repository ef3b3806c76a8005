"""Harmony: the chord of each span of the score, read from the decoder's notes and the key.

The decoder writes lines, and their vertical sums are often bare fifths or single notes; the
accompaniment (composer.arrange.accompany) is voiced from chords instead, so the chords must be
found first. Each span (a half-bar in 4/4, a bar in 3/4 and 6/8, a beat in a chorale) gets
the chord of the key that best explains the notes sounding in it: all parts, weighted by how
long they sound, the melody's note on the span's strong beat a chord tone wherever a chord of
the key holds it, a seventh named only where it sounds. Between spans a Viterbi pass prefers
the progressions music uses (V to I, IV or ii to V); the piece sets out from the tonic, the
plan's phrase ends close on I or V, and the last span is the tonic after a dominant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic

_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Intervals above the root, root first; a seventh chord's fifth is listed before its seventh.
QUALITIES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "7": (0, 4, 7, 10)}
_SUFFIX = {"maj": "", "min": "m", "dim": "dim", "7": "7"}
# The chords of a key: (degree above the tonic, quality, prior). The prior favours the chords
# tonal music leans on; secondary dominants (V/V, V/vi, V/IV) cover a raised melody note.
DIATONIC = {
    "major": ((0, "maj", 1.0), (7, "maj", 0.8), (5, "maj", 0.7), (9, "min", 0.5),
              (2, "min", 0.5), (7, "7", 0.6), (4, "min", 0.2), (11, "dim", 0.15),
              (2, "maj", 0.1), (4, "maj", 0.1), (0, "7", 0.05)),
    "minor": ((0, "min", 1.0), (7, "maj", 0.8), (5, "min", 0.7), (8, "maj", 0.5),
              (3, "maj", 0.4), (7, "7", 0.6), (10, "maj", 0.4), (2, "dim", 0.2),
              (11, "dim", 0.15), (5, "maj", 0.1), (0, "maj", 0.1)),
}  # fmt: skip
OUTSIDE = 0.7  # how much a sounding tone outside the chord counts against it
MELODY_MISS = 0.8  # against a chord without the melody's strong-beat note
PRIOR = 0.25  # weight of the chord's prior
# Progressions: (from degree, quality) -> (to degree, quality) bonuses.
_MOVES = {((7, "maj"), (0,)): 0.35, ((7, "7"), (0,)): 0.45, ((5,), (7,)): 0.2,
          ((2,), (7,)): 0.2, ((7,), (9,)): 0.1, ((7,), (8,)): 0.1}  # fmt: skip
STAY = 0.08  # a chord held into the next span
SEVENTH = 0.3
OPENING = 0.3
CADENCE = 0.6  # the dominant before the final tonic
FINAL = 5.0  # the final tonic: the piece ends on it whatever the decoder's last notes
PHRASE_END = 0.3  # I or V at the other phrase ends


@dataclass(frozen=True)
class Chord:
    start: int  # ticks
    end: int
    root: int  # pitch class
    quality: str  # a key of QUALITIES

    def tones(self) -> tuple[int, ...]:
        """Pitch classes, root first."""
        return tuple((self.root + i) % 12 for i in QUALITIES[self.quality])

    def symbol(self) -> str:
        return _NAMES[self.root] + _SUFFIX[self.quality]


def spans(num: int, den: int, tpq: int, end: int, chorale: bool) -> list[int]:
    """Span starts (ticks) up to ``end``: a chord per half-bar in bars of four felt beats (or
    six), per bar in bars of two or three, per felt beat in a chorale."""
    from composer.music.words import pulse_ticks

    beat = pulse_ticks(num, den, tpq)
    bar = num * tpq * 4 // den
    felt = max(1, bar // beat)
    step = beat if chorale else (bar // 2 if felt % 2 == 0 and felt >= 4 else bar)
    return list(range(0, max(end, 1), step))


def harmonize(
    parts: list[list[symusic.Note]],
    key: tuple[int, str],
    starts: list[int],
    end: int,
    phrase_ends: list[int] = (),
) -> list[Chord]:
    """The chord of each span beginning at ``starts`` (ticks; the last runs to ``end``).

    ``parts``: melody first (its note at a span's start must be a chord tone where the key
    allows); ``phrase_ends``: ticks at which phrases end (a cadence falls in the span before).
    """
    tonic, mode = key
    table = [((tonic + d) % 12, q, prior, d) for d, q, prior in DIATONIC[mode]]
    bounds = list(starts) + [end]
    n = len(starts)
    evidence = np.zeros((n, len(table)))
    lines = [_Part(notes) for notes in parts]
    for s in range(n):
        lo, hi = bounds[s], bounds[s + 1]
        weight = _weights(lines, lo, hi)
        total = weight.sum() or 1.0
        top = lines[0].top_at(lo) if lines else None
        for c, (root, q, prior, _) in enumerate(table):
            tones = {(root + i) % 12 for i in QUALITIES[q]}
            inside = sum(weight[p] for p in tones)
            score = (inside - OUTSIDE * (weight.sum() - inside)) / total + PRIOR * prior
            if top is not None and top % 12 not in tones:
                score -= MELODY_MISS
            if q == "7" and weight[(root + 10) % 12] == 0:
                score -= SEVENTH  # a seventh chord is named only where its seventh sounds
            evidence[s, c] = score
    for c, (_, q, _, d) in enumerate(table):  # the piece sets out from its tonic
        evidence[0, c] += OPENING if d == 0 and q != "7" else 0.0
    ends = {_span_of(bounds, t - 1) for t in phrase_ends if 0 < t <= end}
    for s in ends:
        for c, (_, q, _, d) in enumerate(table):
            if d in (0, 7) and q != "dim":
                evidence[s, c] += PHRASE_END
    if n >= 2:  # the final cadence: a dominant, then the tonic
        for c, (_, q, _, d) in enumerate(table):
            tonic_chord = (d, q) == (0, "maj" if mode == "major" else "min")
            evidence[n - 1, c] += FINAL if tonic_chord else 0.0
            evidence[n - 2, c] += CADENCE if d == 7 and q in ("maj", "7") else 0.0
    path = _viterbi(evidence, _transitions(table))
    return [Chord(bounds[s], bounds[s + 1], table[c][0], table[c][1]) for s, c in enumerate(path)]


class _Part:
    """A part's notes as arrays sorted by onset, to find those sounding in a span by bisection
    rather than by a scan of the whole part for every span."""

    def __init__(self, notes: list[symusic.Note]):
        order = sorted(notes, key=lambda n: n.time)
        self.start = np.array([n.time for n in order], np.int64)
        self.end = self.start + np.array([n.duration for n in order], np.int64)
        self.pc = np.array([n.pitch % 12 for n in order], np.int64)
        self.pitch = np.array([n.pitch for n in order], np.int64)
        self.longest = int((self.end - self.start).max()) if len(order) else 0

    def _near(self, lo: int, hi: int) -> slice:
        """The notes that may sound in [lo, hi): attacked before hi, within the longest note
        of lo."""
        a = int(np.searchsorted(self.start, lo - self.longest, "left"))
        return slice(a, int(np.searchsorted(self.start, hi, "left")))

    def overlap(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(pitch classes, ticks each sounds within [lo, hi)) of the notes near the span."""
        k = self._near(lo, hi)
        ticks = np.minimum(self.end[k], hi) - np.maximum(self.start[k], lo)
        return self.pc[k], np.clip(ticks, 0, None)

    def top_at(self, t: int) -> int | None:
        """The highest pitch sounding at ``t`` (a strong beat's melody note), else None."""
        k = self._near(t, t + 1)
        now = self.pitch[k][(self.start[k] <= t) & (t < self.end[k])]
        return int(now.max()) if len(now) else None


def _weights(parts: list[_Part], lo: int, hi: int) -> np.ndarray:
    """Ticks each pitch class sounds within [lo, hi), over all parts; the melody counts
    half again, as the ear follows it."""
    w = np.zeros(12)
    for k, part in enumerate(parts):
        pcs, ticks = part.overlap(lo, hi)
        np.add.at(w, pcs, ticks * (1.5 if k == 0 else 1.0))
    return w


def _span_of(bounds: list[int], t: int) -> int:
    import bisect

    return max(0, min(len(bounds) - 2, bisect.bisect_right(bounds, t) - 1))


def _transitions(table) -> np.ndarray:
    m = np.zeros((len(table), len(table)))
    for a, (_, qa, _, da) in enumerate(table):
        for b, (_, _, _, db) in enumerate(table):
            if a == b:
                m[a, b] += STAY
            for (src, dst), bonus in _MOVES.items():
                if src[0] == da and (len(src) == 1 or src[1] == qa) and dst[0] == db:
                    m[a, b] += bonus
    return m


def _viterbi(evidence: np.ndarray, moves: np.ndarray) -> list[int]:
    """The chord sequence maximising evidence plus transition bonuses."""
    n, k = evidence.shape
    best = evidence[0].copy()
    back = np.zeros((n, k), int)
    for s in range(1, n):
        total = best[:, None] + moves  # (from, to)
        back[s] = total.argmax(0)
        best = total.max(0) + evidence[s]
    path = [int(best.argmax())]
    for s in range(n - 1, 0, -1):
        path.append(int(back[s, path[-1]]))
    return path[::-1]
