"""The ending: every pitched voice closes together on one final chord, held to the end.

The decoder ends on the tonic triad (the bass on the tonic), so each voice's last onset holds
the cadence; but it may fall in the last half-beat, or a voice may have stopped early. Here the
final chord is placed on the latest beat that leaves at least a beat before the end, every
voice that played sounds in it, and nothing attacks after it.
"""

from __future__ import annotations

import symusic

REACH = 6  # semitones: a resting voice rejoins on the final chord's nearest tone within this


def close(voices: list[list[symusic.Note]], end: int, beat: int) -> list[list[symusic.Note]]:
    """Each voice's notes (ticks) ending together: the final chord at T, the latest beat at or
    before both the last onset and ``end - beat``, sounds in every voice that had notes from T
    to ``end``; notes after T are dropped (the last onset's moved to T), notes sounding at T
    that are not in the chord stop there. ``beat``: ticks per felt beat
    (composer.music.words.pulse_ticks)."""
    kept = [[n for n in v if n.time < end] for v in voices]
    onsets = [max(n.time for n in v) for v in kept if v]
    if not onsets:
        return [[] for _ in voices]
    t = max(0, min(max(onsets), end - beat)) // beat * beat
    finals = [_final(v, t) for v in kept]
    tones = {n.pitch % 12 for f in finals if f for n in f}
    out = []
    for notes, final in zip(kept, finals, strict=True):
        if not notes:
            out.append([])
            continue
        if final is None:  # resting at the end: rejoin on the nearest tone of the chord
            last = max(n.time for n in notes)
            final = [n for n in notes if n.time == last]
            final = [_note(t, end, _nearest(n.pitch, tones), n.velocity) for n in final]
        else:
            final = [_note(min(n.time, t), end, n.pitch, n.velocity) for n in final]
        chord = {n.pitch: n for n in final}
        earlier = [
            _note(n.time, min(n.time + n.duration, t), n.pitch, n.velocity)
            for n in notes
            if n.time < t and not _same(n, chord)
        ]
        out.append(sorted(earlier + list(chord.values()), key=lambda n: (n.time, n.pitch)))
    return out


def _final(notes: list[symusic.Note], t: int) -> list[symusic.Note] | None:
    """The voice's notes at its last onset that belong to the final chord at ``t``: all of
    them when they attack at or after ``t``, those still sounding at ``t`` when earlier; None
    when the voice rests at ``t``."""
    if not notes:
        return None
    last = max(n.time for n in notes)
    at_last = [n for n in notes if n.time == last]
    if last >= t:
        return at_last
    return [n for n in at_last if n.time + n.duration > t] or None


def _same(n: symusic.Note, chord: dict[int, symusic.Note]) -> bool:
    """Whether ``n`` is the held chord note itself (attacked before T and ringing on)."""
    held = chord.get(n.pitch)
    return held is not None and held.time == n.time


def _nearest(pitch: int, tones: set[int]) -> int:
    steps = sorted(range(-REACH, REACH + 1), key=lambda d: (abs(d), d))
    return next((pitch + d for d in steps if (pitch + d) % 12 in tones), pitch)


def _note(start: int, stop: int, pitch: int, velocity: int) -> symusic.Note:
    return symusic.Note(start, stop - start, pitch, velocity)
