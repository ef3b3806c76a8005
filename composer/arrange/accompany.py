"""Accompaniment: the parts under the melody, voiced from the chords in a texture's pattern.

A texture is a small pattern per bar: where the bass attacks, where the chord parts attack, and
whether they play the chord together or broken one note at a time (Pattern). Each attack
sounds the chord of its span (composer.arrange.harmony), voiced for the parts that play it:

- the bass takes the chord's root (its third where the root would move in parallel fifths or
  octaves with the melody), in its instrument's low register, moving as little as it can;
- the inner parts take the other chord tones, the melody's own tone last, between the bass and
  the melody's lowest note in the span, each voice moving to the nearest tone of the next chord;
- an instrument that cannot sound a chord (a flute, a violin) takes one note of it, one that
  can (a piano, a string section, a guitar) the rest; with melody and bass alone, a chordal
  bass instrument plays the chords above its bass as a pianist's left hand does.

Patterns are (onset, length) in the meter's beat units (quarters in x/4, eighths in x/8).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import product

import symusic

from composer.arrange.harmony import Chord
from composer.music.instruments import comfortable, playable, plays_chords
from composer.music.words import meter_class

Beats = tuple[tuple[float, float], ...]
TEXTURES = ("chorale", "held", "waltz", "march", "jig", "arpeggio", "alberti", "running",
            "strum", "pizzicato", "pulse")  # fmt: skip
BASS_TOP = 57  # A3: a bass line sits below it where the instrument reaches
BASS_FLOOR = 33  # A1
INNER_TOP = 79  # G5
SPREAD = 19  # semitones: the widest an inner voicing spans


@dataclass(frozen=True)
class Pattern:
    bass: Beats
    chords: Beats
    broken: str = ""  # "": chords together; "updown" or "alberti": one note per attack


def pattern(texture: str, num: int, den: int) -> Pattern:
    """Where the bass and the chord parts attack in a bar of ``num``/``den``."""
    compound = meter_class(num, den) == "compound"
    size = 3 if compound else 1  # beat units per felt beat
    beats = [g * size for g in range(max(1, num // size))]
    eighth = 1.0 if den == 8 else 0.5
    every = tuple((b, size * 0.95) for b in beats)
    strong, weak = beats[::2], beats[1::2]
    # In the dances the bass rings on under the chords, as a pianist's pedal or a bass player's
    # let-ring holds it, so every beat keeps the chord's root.
    if texture == "waltz" and num == 3 and not compound:
        return Pattern(((0, 2.9),), ((1, 0.9), (2, 0.9)))
    if texture == "jig" and compound:
        return Pattern(tuple((b, 2.9) for b in beats), tuple((b + 2, 1) for b in beats))
    if texture in ("waltz", "march", "jig"):
        # Bass on the strong beats, chords on the others ("oom-pah"); one felt beat: after it.
        off = tuple((b, size * 0.6) for b in weak) or ((size / 2, size / 2),)
        ring = 2 * size if len(beats) > 1 else num
        return Pattern(tuple((b, ring * 0.95) for b in strong), off)
    if texture == "chorale":
        return Pattern(every, every)
    if texture == "held":
        return Pattern(((0, num),), ((0, num),))
    if texture == "pizzicato":
        short = tuple((b, size * 0.4) for b in beats)
        return Pattern(short, short)
    if texture == "pulse":
        return Pattern(every, tuple((i * eighth, eighth * 0.9) for i in range(int(num / eighth))))
    if texture == "strum":
        # Down on every felt beat, with an up-stroke after the second (4/4: 1 2 & - & 4).
        hits = [(b, size * 0.9) for b in beats]
        if len(beats) >= 2:
            hits.append((beats[1] + size / 2, size / 2))
        return Pattern(tuple((b, size * 0.9) for b in strong), tuple(sorted(hits)))
    if texture in ("arpeggio", "alberti", "running"):
        # Alberti and running figures in 16ths: each beat spells the whole chord.
        step = eighth if texture == "arpeggio" else eighth / 2
        steps = tuple((i * step, step) for i in range(int(num / step)))
        bass = every if texture == "running" else ((0, num),)
        return Pattern(bass, steps, "alberti" if texture == "alberti" else "updown")
    raise ValueError(f"unknown texture {texture!r}")


def accompany(
    melody: list[symusic.Note],
    chords: list[Chord],
    programs: list[int],
    sections: list[tuple[int, int, str, list[bool]]],
    *,
    num: int,
    den: int,
    tpq: int,
    velocity: int = 72,
) -> list[list[symusic.Note]]:
    """The notes of each accompanying part (``programs``: inner parts, then the bass), over
    ``sections`` of (start tick, end tick, texture, which of the parts play)."""
    unit = tpq * 4 // den
    bar = num * unit
    starts = [c.start for c in chords]
    voicer = _Voicer(melody, programs)
    out: list[list[symusic.Note]] = [[] for _ in programs]

    def add(i: int, t: int, d: int, p: int, v: int) -> None:
        out[i].append(symusic.Note(t, d, p, v))

    for lo, hi, texture, plays in sections:
        shape = pattern(texture, num, den)
        spell = voicer.breaker(plays) if shape.broken else None
        # Melody and bass alone: a bass that can sound chords plays them above itself; one
        # that cannot plays a chord tone between its own notes (oom-pah), never on them.
        apart = not {o for o, _ in shape.chords} & {o for o, _ in shape.bass}
        lone = 3 if plays_chords(programs[-1]) else 1 if apart or shape.broken else 0
        for b in range(lo // bar, -(-hi // bar)):
            for onset, length in shape.bass if plays[-1] else ():
                for t, d in _pieces(b * bar + round(onset * unit), round(length * unit),
                                    starts, lo, hi):  # fmt: skip
                    add(-1, t, d, voicer.bass(chords[_at(starts, t)]), velocity)
            for k, (onset, length) in enumerate(shape.chords):
                for t, d in _pieces(b * bar + round(onset * unit), round(length * unit),
                                    starts, lo, hi):  # fmt: skip
                    chord = chords[_at(starts, t)]
                    voicing = voicer.inner(chord, plays, lone)
                    if spell is None:
                        for i, ps in enumerate(voicing):
                            for p in ps:
                                add(i, t, d, p, velocity - 6)
                        continue
                    every = _spelled(voicing, voicer.bass_cache.get(chord.start))
                    if every:
                        add(spell, t, d, _broken(every, k, shape.broken), velocity - 6)
                    if t == chord.start or t % bar == 0:  # the other parts hold what it spells
                        for i, ps in enumerate(voicing):
                            for p in ps if i != spell else ():
                                add(i, t, _rest(t, starts, hi, bar), p, velocity - 10)
    return [sorted(_untangle(v), key=lambda n: (n.time, n.pitch)) for v in out]


def _pieces(t: int, length: int, starts: list[int], lo: int, hi: int):
    """(time, duration) of an attack at ``t`` cut at chord changes, re-attacked after each:
    a held chord changes with the harmony. Only what falls in [lo, hi)."""
    if not lo <= t < hi:
        return []
    stop = min(t + max(1, length), hi)
    cuts = starts[bisect.bisect_right(starts, t) : bisect.bisect_left(starts, stop)]
    edges = [t, *cuts, stop]
    return [(a, b - a) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def _rest(t: int, starts: list[int], hi: int, bar: int) -> int:
    """How long a held part sounds from ``t``: to the next chord change or the bar's end."""
    k = bisect.bisect_right(starts, t)
    nxt = starts[k] if k < len(starts) else hi
    return max(1, min(nxt, hi, (t // bar + 1) * bar) - t)


def _at(starts: list[int], t: int) -> int:
    return max(0, bisect.bisect_right(starts, t) - 1)


def _spelled(voicing: list[list[int]], bass: int | None) -> list[int]:
    """The notes a broken chord runs through: the voicing's, less the bass's tone when two
    others remain (the held bass sounds it), the lowest repeated an octave up when only two
    are left, so that any two neighbouring notes and the bass sound the whole chord."""
    every = sorted(p for ps in voicing for p in ps)
    if bass is not None:
        upper = [p for p in every if p % 12 != bass % 12]
        every = upper if len({p % 12 for p in upper}) >= 2 else every
    if len(every) == 2 and every[0] + 12 > every[1]:
        every.append(every[0] + 12)
    return every


def _broken(pitches: list[int], k: int, how: str) -> int:
    """The ``k``-th note of a broken chord: up and down, or Alberti's low-high-middle-high."""
    ps = sorted(pitches)
    if how == "alberti" and len(ps) >= 3:
        return (ps[0], ps[-1], ps[len(ps) // 2], ps[-1])[k % 4]
    cycle = ps + ps[-2:0:-1]
    return cycle[k % len(cycle)]


def _untangle(notes: list[symusic.Note]) -> list[symusic.Note]:
    """A part never strikes a pitch it is still holding: the held note stops there."""
    notes = sorted(notes, key=lambda n: (n.time, n.pitch))
    last: dict[int, symusic.Note] = {}
    out = []
    for n in notes:
        held = last.get(n.pitch)
        if held is not None and held.time + held.duration > n.time:
            if held.time == n.time:
                continue
            held.duration = n.time - held.time
        last[n.pitch] = n
        out.append(n)
    return out


class _Voicer:
    """Chooses the pitches of each chord for the parts, remembering the last voicing so each
    voice moves as little as it can."""

    def __init__(self, melody: list[symusic.Note], programs: list[int]):
        self.melody = sorted(melody, key=lambda n: n.time)
        self.onsets = [n.time for n in self.melody]
        self.programs = programs
        self.prev_bass: int | None = None
        self.prev_inner: list[int] = []
        self.cache: dict[tuple, list[list[int]]] = {}
        self.bass_cache: dict[int, int] = {}

    def breaker(self, plays: list[bool]) -> int:
        """The part that spells a broken chord: the first inner part playing, else the bass."""
        return next((i for i, p in enumerate(plays[:-1]) if p), len(self.programs) - 1)

    def _melody_at(self, t: int) -> int | None:
        """The melody's highest pitch sounding at ``t`` (its notes may overlap), else None."""
        k = bisect.bisect_right(self.onsets, t)
        now = [n.pitch for n in self.melody[max(0, k - 16) : k] if n.time + n.duration > t]
        return max(now) if now else None

    def _floor(self, chord: Chord) -> int:
        """The lowest melody pitch within the chord's span (the accompaniment stays under it)."""
        lo = bisect.bisect_left(self.onsets, chord.start)
        hi = bisect.bisect_left(self.onsets, chord.end)
        pitches = [n.pitch for n in self.melody[lo:hi]]
        held = self._melody_at(chord.start)
        if held is not None:
            pitches.append(held)
        return min(pitches) if pitches else INNER_TOP + 1

    def bass(self, chord: Chord) -> int:
        if chord.start in self.bass_cache:
            return self.bass_cache[chord.start]
        lo, hi = playable(self.programs[-1])
        top = max(min(hi, BASS_TOP), lo + 12)
        top = min(top, max(lo, self._floor(chord) - 7))
        bottom = max(lo, BASS_FLOOR) if top - max(lo, BASS_FLOOR) >= 7 else lo
        root, third = chord.tones()[0], chord.tones()[1]
        options = [(p, pc != root) for pc in (root, third)
                   for p in range(bottom, top + 1) if p % 12 == pc]  # fmt: skip
        if not options:
            options = [(p, False) for p in range(lo, hi + 1) if p % 12 == root][:1] or [(lo, False)]
        before = self._melody_at(chord.start - 1)
        now = self._melody_at(chord.start)

        def cost(option):
            p, inverted = option
            move = abs(p - self.prev_bass) if self.prev_bass is not None else abs(p - 45)
            parallel = 0
            if None not in (before, now, self.prev_bass) and p != self.prev_bass \
                    and now != before:  # fmt: skip
                same_way = (p - self.prev_bass) * (now - before) > 0
                perfect = (before - self.prev_bass) % 12 == (now - p) % 12 in (0, 7)
                parallel = 40 if same_way and perfect else 0
            return move + (6 if inverted else 0) + parallel

        pitch = min(options, key=cost)[0]
        self.prev_bass = pitch
        self.bass_cache[chord.start] = pitch
        return pitch

    def inner(self, chord: Chord, plays: list[bool], lone: int) -> list[list[int]]:
        """Pitches per part; with no inner part playing, the bass's entry holds ``lone``
        chord notes above the bass."""
        key = (chord.start, tuple(plays), lone)
        if key in self.cache:
            return self.cache[key]
        parts = [i for i, p in enumerate(plays[:-1]) if p]
        slots = [1 if not plays_chords(self.programs[i]) else 3 for i in parts]
        if not parts:
            slots = [lone] if plays[-1] else []
        count = min(sum(slots), 4 if chord.quality == "7" else 3)
        out: list[list[int]] = [[] for _ in self.programs]
        if count == 0:
            self.cache[key] = out
            return out
        bass = self.bass(chord)
        ranges = [comfortable(self.programs[i]) for i in (parts or [len(self.programs) - 1])]
        lo = max(bass + 3, min(r[0] for r in ranges))
        hi = min(self._floor(chord) - 1, max(r[1] for r in ranges), INNER_TOP)
        voicing = self._voice(chord, count, lo, hi, bass)
        self.prev_inner = voicing or self.prev_inner
        # Highest notes to the first parts; a part that cannot sound a chord takes one note.
        rest = sorted(voicing, reverse=True)
        targets = parts or [len(self.programs) - 1]
        for n, i in enumerate(targets):
            if not rest:
                break
            later = len(targets) - n - 1
            chordal = plays_chords(self.programs[i]) and (parts or lone > 1)
            take = max(1, len(rest) - later) if chordal else 1
            low, high = playable(self.programs[i])
            # A tone the instrument cannot reach is left to the others, not folded over the tune.
            out[i], rest = [p for p in rest[:take] if low <= p <= high], rest[take:]
        self.cache[key] = out
        return out

    def _voice(self, chord: Chord, count: int, lo: int, hi: int, bass: int) -> list[int]:
        """``count`` chord tones in [lo, hi] nearest the last voicing: the tones the bass does
        not sound first (third, fifth, seventh, root), so bass and parts sound the whole chord."""
        tones = chord.tones()
        order = [tones[1], tones[2], *tones[3:], tones[0]]
        order = [pc for pc in order if pc != bass % 12] + [bass % 12]
        while count > 0:
            wanted = order[:count]
            best = self._nearest(wanted, lo, hi)
            if best:
                return best
            count -= 1
            if hi - lo < 3:
                break
        return []

    def _nearest(self, pcs: list[int], lo: int, hi: int) -> list[int]:
        options = [[p for p in range(lo, hi + 1) if p % 12 == pc] for pc in pcs]
        if any(not o for o in options):
            return []
        best, best_cost = [], None
        prev = self.prev_inner
        for combo in product(*options):
            ps = sorted(combo)
            if ps[-1] - ps[0] > SPREAD or len(set(ps)) < len(ps):
                continue
            if prev:
                cost = sum(min(abs(p - q) for q in prev) for p in ps)
            else:
                cost = abs(sum(ps) / len(ps) - (lo + hi) / 2)
            cost += 0.1 * (ps[-1] - ps[0])
            if best_cost is None or cost < best_cost:
                best, best_cost = ps, cost
        return best
