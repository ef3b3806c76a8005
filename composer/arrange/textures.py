"""Accompaniment textures: a dance's accompaniment in the pattern players expect.

The decoder writes every part as a line; a waltz needs its oom-pah-pah, a march its bass on
the strong beats and chords between, a jig its dotted two-in-a-bar, a lullaby its broken
chords. Here the accompaniment (every part but the melody) is re-timed into the texture's
pattern, keeping the pitches the decoder chose at each moment, so the harmony and the voice
leading stay its own. The melody is untouched, and so is the last bar: the cadence closes as
written (composer.arrange.ending).

Patterns are (onset, length) in units of the meter's beat (quarters in x/4, eighths in x/8),
within one bar.
"""

from __future__ import annotations

import bisect

import symusic

from composer.music.words import meter_class

Pattern = tuple[tuple[float, float], ...]
FREE = ("free", "chorale")  # the decoder's parts as written


def patterns(texture: str, num: int, den: int) -> tuple[Pattern, Pattern]:
    """(bass, chords): where the bass and the chords attack in a bar of ``num``/``den``."""
    compound = meter_class(num, den) == "compound"
    groups = num // 3 if compound else num
    size = 3 if compound else 1  # beat units per felt beat
    beats = [g * size for g in range(groups)]
    if texture == "waltz" and not compound:
        return ((0, 1),), tuple((b, 0.8) for b in beats[1:])
    if texture in ("march", "jig") or (texture == "waltz" and compound):
        # Bass on the strong beats (1 and 3 in 4/4), chords on the others ("oom-pah").
        strong = beats[::2]
        weak = beats[1::2] or [beats[0] + size / 2]
        return (tuple((b, size * 0.9) for b in strong),
                tuple((b, size * (0.9 if compound else 0.6)) for b in weak))  # fmt: skip
    if texture in ("arpeggio", "running"):
        # Broken chords in eighths (a lullaby's rocking), or in 16ths under a busy piece.
        eighth = 1 if den == 8 else 0.5
        step = eighth if texture == "arpeggio" else eighth / 2
        steps = int(num / step)
        bass = ((0, num),) if texture == "arpeggio" else tuple((b, size * 0.9) for b in beats)
        return bass, tuple((i * step, step) for i in range(steps))
    if texture == "held":
        return ((0, num),), ((0, num),)
    raise ValueError(f"unknown texture {texture!r}")


def apply_texture(
    voices: list[list[symusic.Note]], texture: str, num: int, den: int, tpq: int, end: int
) -> list[list[symusic.Note]]:
    """``voices`` (melody first, bass last; ticks) with the accompaniment in ``texture``, in
    every whole bar before the last one that ends by ``end``."""
    if texture in FREE or len(voices) < 2:
        return voices
    unit = tpq * 4 // den
    bar = num * unit
    last = max(0, (end - bar) // bar)  # bars before this one take the pattern
    bass_at, chord_at = patterns(texture, num, den)
    melody, inner, bass = voices[0], voices[1:-1], voices[-1]
    lines = [_Line(v) for v in voices]
    broken = texture in ("arpeggio", "running")

    def timed(line: _Line, pattern: Pattern, b: int) -> list[symusic.Note]:
        out = []
        for onset, length in pattern:
            t = b * bar + round(onset * unit)
            for pitch, velocity in line.sounding(t, bar):
                out.append(symusic.Note(t, max(1, round(length * unit)), pitch, velocity))
        return out

    new_inner: list[list[symusic.Note]] = [[] for _ in inner]
    new_bass: list[symusic.Note] = []
    both = _Line(melody + bass) if len(voices) == 2 else None
    for b in range(last):
        new_bass += timed(lines[-1], bass_at, b)
        if broken and inner:
            # The first inner part breaks the chords; the others hold their bar-start pitch.
            new_inner[0] += _broken(lines[1], lines, chord_at, b, bar, unit, 0)
            for i, line in enumerate(lines[2:-1], start=1):
                new_inner[i] += timed(line, ((0, num),), b)
        elif broken:  # melody and bass alone: the bass breaks the chords an octave up
            new_bass += _broken(lines[-1], lines, chord_at, b, bar, unit, 12)
        elif inner:
            for i, line in enumerate(lines[1:-1]):
                new_inner[i] += timed(line, chord_at, b)
        else:  # melody and bass alone: the bass plays the chords above itself too
            for n in timed(lines[-1], chord_at, b):
                tones = {p % 12 for p, _ in both.sounding(n.time, bar)}
                new_bass += [symusic.Note(n.time, n.duration, p, n.velocity)
                             for p in _above(n.pitch, tones)]  # fmt: skip
    cut = last * bar

    def keep(notes: list[symusic.Note]) -> list[symusic.Note]:
        return [n for n in notes if n.time >= cut]

    return [
        melody,
        *[new + keep(old) for new, old in zip(new_inner, inner, strict=True)],
        new_bass + keep(bass),
    ]


class _Line:
    """A part's notes sorted by onset, to ask what sounds at a time without scanning them all."""

    def __init__(self, notes: list[symusic.Note]):
        self.notes = sorted(notes, key=lambda n: n.time)
        self.onsets = [n.time for n in self.notes]
        self.longest = max((n.duration for n in notes), default=0)

    def sounding(self, t: int, bar: int) -> list[tuple[int, int]]:
        """(pitch, velocity) of the notes sounding at ``t``, else of the latest attacked within
        a bar before it (the part's harmony when it rests); [] when silent longer."""
        # Only notes attacked within the longest note's length (or a bar) before t can count.
        hi = bisect.bisect_right(self.onsets, t)
        lo = bisect.bisect_left(self.onsets, t - max(self.longest, bar))
        near = self.notes[lo:hi]
        now = [n for n in near if t < n.time + n.duration]
        # A line's current note (or chord): a note it let ring into the next is not it.
        pool = now or [n for n in near if t - bar <= n.time]
        if not pool:
            return []
        latest = max(n.time for n in pool)
        return [(n.pitch, n.velocity) for n in pool if n.time == latest]


def _above(bass: int, tones: set[int]) -> list[int]:
    """The chord's other tones voiced in the octave from a fifth above the bass."""
    return sorted(p for p in range(bass + 7, bass + 19) if p % 12 in tones and p % 12 != bass % 12)


def _broken(part: _Line, lines: list[_Line], steps: Pattern, b: int, bar: int, unit: int,
            lift: int) -> list[symusic.Note]:  # fmt: skip
    """One bar of the chord sounding at each step broken up, then down, in the octave from
    ``part``'s pitch at the bar's start (raised by ``lift`` semitones)."""
    start = b * bar
    home = part.sounding(start, bar)
    if not home:
        return []
    low, velocity = min(p for p, _ in home) + lift, home[0][1]
    out = []
    for k, (onset, length) in enumerate(steps):
        t = start + round(onset * unit)
        tones = {p % 12 for line in lines for p, _ in line.sounding(t, bar)}
        pitches = [p for p in range(low, low + 12) if p % 12 in tones]
        if not pitches:
            continue
        cycle = pitches + pitches[-2:0:-1]  # up, then down without repeating the ends
        out.append(symusic.Note(t, max(1, round(length * unit)), cycle[k % len(cycle)], velocity))
    return out
