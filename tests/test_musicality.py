"""composer eval musicality: each figure on hand-built scores where the answer is known, and the
report written for one composed request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import symusic

from composer.errors import ComposerError
from composer.evaluate import musicianship as m
from composer.evaluate.musicality import eval_musicality
from composer.music.harmony import chord_of, window_chords

TPQ = 24


def _score(parts: dict[str, list[tuple[float, float, int]]], meter=(4, 4), programs=None):
    """A score with one track per name; notes are (onset, length) in quarters and a pitch."""
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, *meter))
    for name, notes in parts.items():
        track = symusic.Track(name, (programs or {}).get(name, 48), False)
        for onset, length, pitch in notes:
            track.notes.append(symusic.Note(round(onset * TPQ), round(length * TPQ), pitch, 80))
        s.tracks.append(track)
    return s


def _blocks(chords, beats=4.0, names=("melody", "harmony1", "harmony2", "bass")):
    """One chord per bar, held: ``chords`` lists (top, ..., bottom) pitches."""
    return {name: [(i * beats, beats, chord[k]) for i, chord in enumerate(chords)]
            for k, name in enumerate(names)}  # fmt: skip


# C, F, G, C in four parts: every beat a full triad, the melody on a chord tone, no parallels.
CHORALE = _score(_blocks([(72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48)]))


def test_a_block_chord_progression_is_complete_harmony_on_chord_tones():
    assert m.complete_harmony(CHORALE) == (16, 16)
    assert m.melody_chord_tones(CHORALE) == (8, 8)  # beats 1 and 3 of four bars
    assert m.outer_parallels(CHORALE) == (0, 3)
    assert m.melody_on_top(CHORALE) == (64, 64)  # four bars of 16ths
    assert m.bass_at_bottom(CHORALE) == (64, 64)
    assert m.bass_downbeats(CHORALE) == (4, 4)


def test_bare_fifths_are_not_complete_harmony():
    fifths = _score(_blocks([(60, 55, 48)] * 4, names=("melody", "harmony1", "bass")))
    assert m.complete_harmony(fifths) == (0, 16)


def test_a_melody_off_the_chord_on_strong_beats_is_caught():
    # D over a held C major chord: the window's chord is C major, and D is not in it.
    off = _score(_blocks([(74, 67, 64, 48)] * 2))
    assert m.melody_chord_tones(off) == (0, 4)
    weights = [48, 0, 48, 0, 48, 0, 0, 48, 0, 0, 0, 0]  # C, D, E, G equally long
    assert chord_of(np.array(weights)) == {0, 4, 7}


def test_window_chords_weigh_each_note_where_it_sounds():
    """A held G under C E then under B D: each window reads the chord that sounds in it; a
    window where nothing sounds reads none; drums are not harmony."""
    s = symusic.Score(480)
    bass, upper, drums = (symusic.Track("b", 0, False), symusic.Track("u", 0, False),
                          symusic.Track("d", 0, True))  # fmt: skip
    bass.notes.append(symusic.Note(0, 960, 43, 80))
    upper.notes.extend(symusic.Note(0, 480, p, 80) for p in (60, 64))
    upper.notes.extend(symusic.Note(480, 480, p, 80) for p in (59, 62))
    drums.notes.append(symusic.Note(960, 480, 37, 80))
    s.tracks.extend([bass, upper, drums])
    assert window_chords(s, [0, 1, 2], [0, 480, 960, 1440]) == [{0, 4, 7}, {7, 11, 2}, None]
    assert window_chords(s, [1], [480, 960]) == [chord_of(np.eye(12)[11] + np.eye(12)[2])]


@pytest.mark.parametrize(
    "chord,complete",
    [
        ((69, 64, 60, 57), True),  # A minor
        ((71, 65, 62, 59), True),  # B diminished
        ((72, 68, 64, 48), True),  # C augmented
        ((70, 67, 64, 48), True),  # C7 holds its triad
        ((70, 64, 60, 48), False),  # C7 without its fifth
        ((72, 65, 62, 48), False),  # C D F: a cluster
    ],
)
def test_every_kind_of_triad_is_complete_harmony(chord, complete):
    assert m.complete_harmony(_score(_blocks([chord]))) == (4 if complete else 0, 4)


def _outer(top: list[int], bottom: list[int]) -> symusic.Score:
    """A melody and a bass in quarter notes."""
    return _score({"melody": [(i, 1, p) for i, p in enumerate(top)],
                   "bass": [(i, 1, p) for i, p in enumerate(bottom)]})  # fmt: skip


def test_parallel_fifths_and_octaves_between_the_outer_parts_are_counted():
    assert m.outer_parallels(_outer([67, 69, 71], [48, 50, 52])) == (2, 2)  # G/C, A/D, B/E
    assert m.outer_parallels(_outer([72, 74], [48, 50])) == (1, 1)
    assert m.outer_parallels(_outer([67, 65, 64], [48, 50, 52])) == (0, 2)  # contrary motion
    assert m.outer_parallels(_outer([67, 67], [48, 50])) == (0, 1)  # the melody holds


def test_a_melody_under_its_accompaniment_is_not_on_top():
    under = _score({"melody": [(0, 4, 60)], "harmony1": [(0, 4, 72)], "bass": [(0, 4, 48)]})
    assert m.melody_on_top(under) == (0, 16)
    assert m.bass_at_bottom(under) == (16, 16)


def test_a_flute_note_below_its_range_is_caught():
    flute = _score({"melody": [(0, 1, 72), (1, 1, 55)], "bass": [(0, 2, 48)]},
                   programs={"melody": 73, "bass": 42})  # fmt: skip
    assert m.in_range(flute) == (2, 3)  # the flute's G3; the cello's C3 is fine


def _waltz(accompaniment: str) -> symusic.Score:
    """Eight bars of 3/4: a melody over an oom-pah-pah (or a held chord on each downbeat)."""
    melody, bass, chords = [], [], []
    for bar in range(8):
        t = bar * 3
        melody += [(t, 2, 72 + bar % 3), (t + 2, 1, 76)]
        if accompaniment == "oom-pah-pah":
            bass.append((t, 1, 48))
            chords += [(t + b, 1, p) for b in (1, 2) for p in (64, 67)]
        else:
            bass.append((t, 3, 48))
            chords += [(t, 3, 64), (t, 3, 67)]
    return _score({"melody": melody, "harmony1": chords, "bass": bass}, meter=(3, 4))


def test_an_oom_pah_pah_is_a_waltz_and_not_a_march():
    waltz = _waltz("oom-pah-pah")
    assert m.texture_of(waltz, "waltz") == (6, 6)  # all but the first and last bar
    assert m.texture_of(waltz, "march") == (0, 6)
    assert m.has_texture(m.texture_of(waltz, "waltz"))
    held = _waltz("held")
    assert m.texture_of(held, "waltz") == (0, 6)
    assert not m.has_texture(m.texture_of(held, "waltz"))


def test_a_jig_accompaniment_is_a_jig_and_not_a_march():
    melody, accompaniment = [], []
    for bar in range(6):
        t = bar * 3  # quarters per 6/8 bar
        melody.append((t, 3, 76))
        accompaniment += [(t, 0.5, 45), (t + 1.5, 0.5, 45)]  # eighths 1 and 4: the bass
        accompaniment += [(t + 1, 0.5, 64), (t + 2.5, 0.5, 64)]  # eighths 3 and 6: the chord
    jig = _score({"melody": melody, "bass": accompaniment}, meter=(6, 8))
    assert m.texture_of(jig, "jig") == (4, 4)
    assert m.texture_of(jig, "march") == (0, 4)  # the second dotted quarter is the bass again


def test_a_syncopated_bass_misses_the_downbeats():
    late = _score({"melody": [(0, 8, 72)], "bass": [(0.5, 3.5, 48), (4.5, 3.5, 48)]})
    assert m.bass_downbeats(late) == (0, 2)


def _bar(k: int) -> list[tuple[float, float, int]]:
    """A bar of 4/4 whose onsets no other k gives: a note at 0 and one at (k + 1) 16ths."""
    return [(0, (k + 1) / 4, 60 + k % 5), ((k + 1) / 4, 4 - (k + 1) / 4, 67 - k % 3)]


def _melody(bars: list[list[tuple[float, float, int]]]) -> symusic.Score:
    notes = [(i * 4 + t, d, p) for i, bar in enumerate(bars) for t, d, p in bar]
    return _score({"melody": notes})


def test_a_returning_phrase_recurs_and_a_through_composed_melody_does_not():
    phrase = [_bar(k) for k in range(4)]
    returning = _melody(phrase + [_bar(k) for k in (4, 5, 6, 7)] + phrase
                        + [_bar(k) for k in (8, 9, 10, 11)])  # fmt: skip
    recurring, windows = m.recurrence(returning)
    assert (recurring, windows) == (6, 15)  # the windows in bars 0-3 return in bars 8-11
    assert m.phrase_returns(returning) == 2  # bars 0-3 and 8-11, each the other's return

    through = _melody([_bar(k) for k in range(15)] + [[(0, 4, 60)]])
    assert m.recurrence(through) == (0, 15)
    assert m.phrase_returns(through) == 0

    # Bars 0-1 and 1-2 are the same window one bar apart: overlapping, not a return.
    held = _melody([_bar(0)] * 3 + [_bar(k) for k in range(1, 13)] + [[(0, 4, 60)]])
    assert m.recurrence(held) == (0, 15)

    assert m.recurrence(_melody(phrase * 3)) is None  # 12 bars: too short to judge
    assert m.phrase_returns(_melody(phrase * 3)) is None


def test_compound_meters_feel_dotted_quarters():
    jig = _score({"melody": [(0, 3, 72)], "harmony1": [(0, 3, 67)], "bass": [(0, 3, 60)]},
                 meter=(6, 8))  # fmt: skip
    piece = m._piece(jig)
    assert piece.beats(piece.bars[0]) == [0, 36]  # two felt beats in a bar of 6/8


@pytest.mark.slow
def test_the_report_is_written_for_a_composed_request(tmp_path: Path):
    battery = tmp_path / "b.tsv"
    battery.write_text("a waltz for strings\ttexture=waltz\n")
    out = tmp_path / "out"
    report = eval_musicality(battery, duration=12, corpus_per_style=2, out=out)
    (piece,) = report.pieces
    assert piece.texture == "waltz" and piece.texture_bars is not None
    assert piece.measures.in_range is not None
    text = (out / "musicality.txt").read_text()
    assert text.startswith("$ composer eval musicality ")
    assert "overall, against the targets:" in text and "complete harmony" in text
    assert (out / "musicality.png").read_bytes().startswith(b"\x89PNG")
    data = json.loads((out / "musicality.json").read_text())
    assert {t["name"] for t in data["targets"]} >= {"complete harmony", "stated textures"}
    assert report.corpus[piece.style].pieces == 2

    # Measured again from its folder, without composing, the piece gives the same figures.
    again = eval_musicality(battery, scores=[piece.folder], corpus_per_style=0)
    assert again.pieces[0].measures == piece.measures
    assert again.pieces[0].texture_bars == piece.texture_bars


def test_a_battery_stating_an_unknown_texture_is_refused_before_composing(tmp_path: Path):
    battery = tmp_path / "b.tsv"
    battery.write_text("a polka\ttexture=polka\na hymn\n")
    with pytest.raises(ComposerError, match="unknown textures"):
        eval_musicality(battery, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
