"""Accompaniment textures: a dance's accompaniment attacks where its players would."""

from __future__ import annotations

import pytest
import symusic

from composer.arrange.textures import apply_texture

TPQ = 24


def _held(pitch: int, bars: int, bar: int) -> list[symusic.Note]:
    """One part holding ``pitch`` a whole bar at a time (a line the decoder might write)."""
    return [symusic.Note(b * bar, bar, pitch, 80) for b in range(bars)]


def _onsets(notes, bar: int, unit: int) -> set[float]:
    return {(n.time % bar) / unit for n in notes}


@pytest.mark.parametrize(
    "texture,num,den,bass,chords",
    [("waltz", 3, 4, {0}, {1, 2}), ("march", 4, 4, {0, 2}, {1, 3}), ("march", 2, 4, {0}, {1}),
     ("jig", 6, 8, {0}, {3}), ("jig", 12, 8, {0, 6}, {3, 9})],
)  # fmt: skip
def test_bass_on_the_strong_beats_chords_between(texture, num, den, bass, chords):
    unit = TPQ * 4 // den
    bar = num * unit
    bars = 4
    voices = [
        _held(72, bars, bar),
        _held(64, bars, bar),
        _held(60, bars, bar),
        _held(48, bars, bar),
    ]
    out = apply_texture(voices, texture, num, den, TPQ, bars * bar)
    assert out[0] == voices[0]  # the melody is untouched
    early = lambda notes: [n for n in notes if n.time < (bars - 1) * bar]  # noqa: E731
    assert _onsets(early(out[-1]), bar, unit) == bass
    for inner in out[1:-1]:
        assert _onsets(early(inner), bar, unit) == chords
        assert {n.pitch for n in inner} == {voices[out.index(inner)][0].pitch}  # pitches kept
    assert [n for n in out[-1] if n.time >= (bars - 1) * bar] == voices[-1][-1:]  # last bar


def test_melody_and_bass_alone_the_bass_plays_the_chords_too():
    bar = 3 * TPQ
    voices = [_held(76, 3, bar), _held(48, 3, bar)]
    out = apply_texture(voices, "waltz", 3, 4, TPQ, 3 * bar)
    first = [n for n in out[1] if n.time < bar]
    assert {n.time for n in first} == {0, TPQ, 2 * TPQ}
    assert all(n.pitch > 48 for n in first if n.time > 0)  # chords above the bass


def test_arpeggio_breaks_the_chord_in_eighths():
    bar = 4 * TPQ
    voices = [_held(76, 3, bar), _held(64, 3, bar), _held(67, 3, bar), _held(48, 3, bar)]
    out = apply_texture(voices, "arpeggio", 4, 4, TPQ, 3 * bar)
    broken = [n for n in out[1] if n.time < bar]
    assert len(broken) == 8 and len({n.pitch for n in broken}) >= 3


def test_free_and_chorale_leave_the_parts_as_written():
    voices = [_held(72, 2, 96), _held(48, 2, 96)]
    assert apply_texture(voices, "free", 4, 4, TPQ, 192) is voices
    assert apply_texture(voices, "chorale", 4, 4, TPQ, 192) is voices


def test_a_dense_piece_runs_in_sixteenths_and_a_sparse_one_holds():
    bar = 4 * TPQ
    voices = [_held(76, 3, bar), _held(64, 3, bar), _held(67, 3, bar), _held(48, 3, bar)]
    running = apply_texture(voices, "running", 4, 4, TPQ, 3 * bar)
    assert len([n for n in running[1] if n.time < bar]) == 16
    assert _onsets([n for n in running[-1] if n.time < bar], bar, TPQ) == {0, 1, 2, 3}
    held = apply_texture(voices, "held", 4, 4, TPQ, 3 * bar)
    assert all(n.duration == bar for part in held[1:] for n in part)
    duo = apply_texture([voices[0], voices[-1]], "running", 4, 4, TPQ, 3 * bar)
    assert len([n for n in duo[1] if n.time < bar and n.pitch > 48]) == 16  # an octave up
