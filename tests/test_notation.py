"""MusicXML from a symusic score: signatures in every part, the MIDI's bar count, rhythm on the
meter's grid (no tuplets), ties over bar lines, clefs by instrument and range, same bytes each
time, and LilyPond reads it without a failed bar check."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import pytest
import symusic
from conftest import shared

from composer.evaluate.notation import lilypond_warnings, notation_facts
from composer.music.m21 import music21_converter
from composer.music.notation import write_musicxml

TPQ = 480
Notes = list[tuple[float, float, int | tuple[int, ...]]]  # (start, length) in quarters, pitch(es)


def _score(meters=((0, 4, 4),), keys=((0, 0, 0),), bpm=96.0, tpq=TPQ) -> symusic.Score:
    """An empty score; meters (quarter, numerator, denominator), keys (quarter, sharps, minor)."""
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, bpm))
    for q, num, den in meters:
        score.time_signatures.append(symusic.TimeSignature(round(q * tpq), num, den))
    for q, sharps, minor in keys:
        score.key_signatures.append(symusic.KeySignature(round(q * tpq), sharps, minor))
    return score


def _add(score: symusic.Score, name: str, program: int, notes: Notes, drum: bool = False) -> None:
    tpq = score.ticks_per_quarter
    track = symusic.Track(name, program, drum)
    for start, length, pitches in notes:
        for p in pitches if isinstance(pitches, tuple) else (pitches,):
            track.notes.append(symusic.Note(round(start * tpq), round(length * tpq), p, 90))
    score.tracks.append(track)


def four_four() -> symusic.Score:
    """Flute with a note over the bar line, piano chords (one with notes of two lengths)."""
    s = _score()
    flute = [(0, 1, 72), (1, 1, 74), (2, 0.5, 76), (2.5, 0.5, 77), (3, 2, 79), (5, 1, 77),
             (6, 2, 76)]  # fmt: skip
    _add(s, "melody (Flute)", 73, flute)
    _add(s, "harmony2 (Piano)", 0, [(0, 2, (60, 64, 67)), (2, 2, (60, 65, 69)),
                                    (4, 4, (55, 59)), (4, 2, 62), (6, 2, 65)])  # fmt: skip
    _add(s, "percussion", 0, [(q, 0.5, 42) for q in range(8)], drum=True)
    return s


def jig() -> symusic.Score:
    """6/8: runs of eighths, eighths then a dotted quarter, dotted quarters in the bass."""
    s = _score(meters=((0, 6, 8),), keys=((0, 1, 0),), bpm=120.0)
    melody: Notes = []
    for bar in range(4):
        q = bar * 3.0
        if bar % 2 == 0:
            melody += [(q + i * 0.5, 0.5, 67 + (i * 2) % 7) for i in range(6)]
        else:
            melody += [(q, 0.5, 74), (q + 0.5, 0.5, 72), (q + 1, 0.5, 71), (q + 1.5, 1.5, 67)]
    _add(s, "melody (Violin)", 40, melody)
    _add(s, "bass (Cello)", 42, [(q * 1.5, 1.5, 43 + q % 3) for q in range(8)])
    return s


def waltz() -> symusic.Score:
    """3/4 with a played-in part: onsets off the grid, a 5/16 note, a note of 10 ticks."""
    s = _score(meters=((0, 3, 4),), keys=((0, -3, 1),))
    _add(
        s,
        "melody (Oboe)",
        68,
        [(b * 3, 2, 72) for b in range(4)] + [(b * 3 + 2, 1, 75) for b in range(4)],
    )
    played = [(0.03, 1.25, 60), (1.27, 0.02, 62), (1.5, 0.74, 63), (2.26, 0.99, 67),
              (3.25, 1.25, 68), (4.5, 2.4, 61), (7.01, 4.9, 59)]  # fmt: skip
    _add(s, "harmony1 (Piano)", 0, played)
    return s


def changes() -> symusic.Score:
    """4/4 in G for two bars, then 3/4 in E-flat for two."""
    s = _score(meters=((0, 4, 4), (8, 3, 4)), keys=((0, 1, 0), (8, -3, 0)))
    _add(s, "melody (Clarinet)", 71, [(q, 1, 67 + q % 5) for q in range(14)])
    _add(s, "bass (Bassoon)", 70, [(0, 4, 43), (4, 4, 38), (8, 3, 39), (11, 3, 46)])
    return s


def strings() -> symusic.Score:
    """A string quartet with a double bass, a piano low in its range and a guitar."""
    s = _score()
    for name, program, low in (
        ("Violin", 40, 67),
        ("Viola", 41, 55),
        ("Cello", 42, 48),
        ("Contrabass", 43, 40),
        ("Piano", 0, 40),
        ("Guitar", 25, 52),
    ):
        _add(s, f"part ({name})", program, [(q, 1, low + q % 7) for q in range(8)])
    return s


def uneven() -> symusic.Score:
    """Parts of 8 bars and of 2, drums going on to bar 10."""
    s = _score()
    _add(s, "melody (Flute)", 73, [(q, 1, 72 + q % 5) for q in range(32)])
    _add(s, "bass (Tuba)", 58, [(0, 4, 36), (4, 4, 41)])
    _add(s, "percussion", 0, [(q, 0.25, 36) for q in range(40)], drum=True)
    return s


FIXTURES = {"four_four": four_four, "jig": jig, "waltz": waltz, "changes": changes,
            "strings": strings, "uneven": uneven}  # fmt: skip
BARS = {"four_four": 2, "jig": 4, "waltz": 4, "changes": 4, "strings": 2, "uneven": 10}


def _write(score: symusic.Score, tmp_path: Path, name: str = "score") -> Path:
    return write_musicxml(score, tmp_path / f"{name}.musicxml")


def _parse(path: Path):
    return music21_converter().parse(str(path), format="musicxml", forceSource=True,
                                     storePickle=False)  # fmt: skip


def _assert_full_bars(path: Path) -> None:
    """Every measure of every part (each voice) adds up exactly to its meter's bar."""
    from music21 import meter, stream

    for part in _parse(path).parts:
        ts = None
        for m in part.getElementsByClass(stream.Measure):
            ts = m.timeSignature or ts
            assert isinstance(ts, meter.TimeSignature)
            for v in m.voices or [m]:
                total = sum(Fraction(n.quarterLength) for n in v.notesAndRests)
                assert total == Fraction(ts.barDuration.quarterLength), (part.partName, m.number)


@pytest.mark.parametrize("name", FIXTURES)
def test_every_part_has_signatures_and_the_bar_count(name: str, tmp_path: Path) -> None:
    path = _write(FIXTURES[name](), tmp_path)
    facts = notation_facts(path)
    assert facts.parts
    for part in facts.parts:
        assert part.key_signature and part.time_signature, part
        assert part.measures == BARS[name], part
        assert part.tuplets == 0, part
    _assert_full_bars(path)


def test_drums_are_left_out_and_parts_named_with_their_program(tmp_path: Path) -> None:
    path = _write(four_four(), tmp_path)
    assert [p.name for p in notation_facts(path).parts] == ["Flute", "Piano"]
    text = path.read_text()
    assert "<midi-program>74</midi-program>" in text  # GM flute, 1-based in MusicXML
    assert "<midi-program>1</midi-program>" in text


def test_a_note_over_the_bar_line_is_tied_and_chords_stay_chords(tmp_path: Path) -> None:
    from music21 import chord, stream

    flute, piano = _parse(_write(four_four(), tmp_path)).parts
    first, second = flute.getElementsByClass(stream.Measure)
    assert first.notes[-1].tie.type == "start" and first.notes[-1].quarterLength == 1
    assert second.notes[0].tie.type == "stop" and second.notes[0].pitch.midi == 79
    chords = list(piano.recurse().getElementsByClass(chord.Chord))
    assert [len(c.pitches) for c in chords[:2]] == [3, 3]
    # Notes of two lengths struck together: one chord, the longer notes cut at the next onset.
    assert [p.midi for p in chords[2].pitches] == [55, 59, 62] and chords[2].quarterLength == 2


def test_compound_meter_is_beamed_in_dotted_quarters_without_tuplets(tmp_path: Path) -> None:
    from music21 import stream

    violin = _parse(_write(jig(), tmp_path)).parts[0]
    measures = list(violin.getElementsByClass(stream.Measure))
    assert measures[0].timeSignature.ratioString == "6/8"
    assert [n.quarterLength for n in measures[0].notes] == [0.5] * 6
    assert [n.beams.getTypes() for n in measures[0].notes] == [
        ["start"], ["continue"], ["stop"], ["start"], ["continue"], ["stop"]]  # fmt: skip
    assert [n.quarterLength for n in measures[1].notes] == [0.5, 0.5, 0.5, 1.5]
    assert not any(n.duration.tuplets for n in violin.recurse().notesAndRests)


def test_played_rhythms_land_on_sixteenths(tmp_path: Path) -> None:
    """Off-grid onsets snap to 16ths, a 5/16 note is tied values, a tiny note lasts a 16th."""
    from music21 import duration

    piano = _parse(_write(waltz(), tmp_path)).parts[1]
    values = [n.quarterLength for n in piano.recurse().notesAndRests]
    assert min(values) == 0.25
    assert all(Fraction(v) * 4 == int(Fraction(v) * 4) for v in values)
    assert all(duration.Duration(v).type != "complex" for v in values)
    onsets = [n.getOffsetInHierarchy(piano) for n in piano.recurse().notes]
    assert onsets[:4] == [0, 1, 1.25, 1.5]  # 0.03 -> 0, 1.27 -> 1.25 and lasts a 16th


def test_rests_start_on_their_own_value(tmp_path: Path) -> None:
    """After a quarter on beat 1 of 4/4: a quarter rest and a half rest, not a dotted half; in
    6/8 after an eighth, two eighth rests then a dotted quarter rest."""
    from music21 import stream

    s = _score(meters=((0, 4, 4), (4, 6, 8)))
    _add(s, "melody (Flute)", 73, [(0, 1, 72), (4, 0.5, 72)])
    measures = _parse(_write(s, tmp_path)).parts[0].getElementsByClass(stream.Measure)
    assert [n.quarterLength for n in measures[0].notesAndRests] == [1, 1, 2]
    assert [n.quarterLength for n in measures[1].notesAndRests] == [0.5, 0.5, 0.5, 1.5]


def test_meter_and_key_changes_are_in_every_part(tmp_path: Path) -> None:
    from music21 import stream

    for part in _parse(_write(changes(), tmp_path)).parts:
        measures = list(part.getElementsByClass(stream.Measure))
        assert measures[0].timeSignature.ratioString == "4/4"
        assert measures[0].keySignature.sharps == 1
        assert measures[2].timeSignature.ratioString == "3/4"
        assert measures[2].keySignature.sharps == -3
        assert measures[1].timeSignature is None and measures[1].keySignature is None


def test_a_meter_change_inside_a_bar_cuts_the_bar_short(tmp_path: Path) -> None:
    from music21 import stream

    s = _score(meters=((0, 4, 4), (6, 3, 4)))
    _add(s, "melody (Flute)", 73, [(q, 1, 72) for q in range(12)])
    path = _write(s, tmp_path)
    measures = list(_parse(path).parts[0].getElementsByClass(stream.Measure))
    assert [m.timeSignature.ratioString if m.timeSignature else None for m in measures] == [
        "4/4", "2/4", "3/4", None]  # fmt: skip
    _assert_full_bars(path)


def test_clefs_follow_instrument_and_range(tmp_path: Path) -> None:
    facts = notation_facts(_write(strings(), tmp_path))
    assert [p.clef for p in facts.parts] == ["treble", "alto", "bass", "bass", "bass",
                                             "treble8vb"]  # fmt: skip


def test_parts_of_different_lengths_end_together_in_rests(tmp_path: Path) -> None:
    from music21 import stream

    score = _parse(_write(uneven(), tmp_path))
    assert len(score.parts) == 2  # drums left out
    tuba = list(score.parts[1].getElementsByClass(stream.Measure))
    assert len(tuba) == 10
    assert all(not m.notes and len(m.notesAndRests) == 1 for m in tuba[2:])


def test_the_same_score_gives_the_same_bytes(tmp_path: Path) -> None:
    first = _write(jig(), tmp_path, "a").read_bytes()
    assert _write(jig(), tmp_path, "b").read_bytes() == first
    assert b"encoding-date" not in first and b"Music21" not in first


def test_an_existing_file_is_replaced_and_nothing_else_is_left(tmp_path: Path) -> None:
    target = tmp_path / "score.musicxml"
    target.write_text("<?xml version='1.0'?><score-partwise/>")
    write_musicxml(waltz(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["score.musicxml"]
    assert notation_facts(target).parts[0].measures == 4


def test_a_score_without_notes_is_one_bar_of_rest(tmp_path: Path) -> None:
    facts = notation_facts(_write(_score(), tmp_path))
    assert [(p.measures, p.key_signature, p.time_signature) for p in facts.parts] == [
        (1, True, True)]  # fmt: skip


def test_an_arranged_score(tmp_path: Path) -> None:
    """What composer writes as score.mid: the arranger's tracks and ending in 6/8, with drums."""
    from composer.arrange.arranger import arrange
    from composer.plan.planner import make_plan
    from composer.plan.request import PromptFacts
    from composer.types import Choice

    plan = make_plan(None, PromptFacts(text="", meter=(6, 8), duration=20.0, bpm=96.0), seed=0)
    plan.drums = Choice(True, "prompt", "test")
    roles = symusic.Score(TPQ)
    for role, low in enumerate((72, 64, 60, 57, 52, 40)):
        track = symusic.Track("", role, False)
        for i in range(len(plan.bars) * 4):
            track.notes.append(symusic.Note(i * 360, 360 if i % 3 else 720, low + i % 5, 80))
        roles.tracks.append(track)
    score = arrange(roles, plan)
    path = _write(score, tmp_path)
    facts = notation_facts(path)
    assert len({p.measures for p in facts.parts}) == 1
    assert all(p.key_signature and p.time_signature and not p.tuplets for p in facts.parts)
    _assert_full_bars(path)
    _assert_lilypond_clean(path, tmp_path)


def _assert_lilypond_clean(path: Path, tmp_path: Path) -> None:
    warnings = lilypond_warnings(path, tmp_path / "ly")
    if warnings is None:
        pytest.skip("LilyPond (musicxml2ly, lilypond) is not installed")
    assert warnings == []


@pytest.mark.skipif(shutil.which("lilypond") is None, reason="LilyPond is not installed")
@pytest.mark.parametrize("name", FIXTURES)
def test_lilypond_finds_no_failed_bar_check(name: str, tmp_path: Path) -> None:
    _assert_lilypond_clean(_write(FIXTURES[name](), tmp_path), tmp_path)


def test_lilypond_reports_a_failed_bar_check(tmp_path: Path) -> None:
    """The check itself: a measure one quarter too long is reported."""
    path = _write(four_four(), tmp_path)
    text = path.read_text()
    cut = text.index("</measure>")
    extra = "<note><pitch><step>C</step><octave>5</octave></pitch><duration>10080</duration>"
    path.write_text(text[:cut] + extra + "<type>quarter</type></note>" + text[cut:])
    warnings = lilypond_warnings(path, tmp_path / "ly")
    if warnings is None:
        pytest.skip("LilyPond (musicxml2ly, lilypond) is not installed")
    assert any("check failed" in w.lower() for w in warnings), warnings


def _bar_count(score: symusic.Score) -> int:
    """Bars of the time-signature map up to the last note end (on the 16th grid)."""
    tpq = score.ticks_per_quarter
    end = max(Fraction(round(n.end * 4 / tpq), 4) for t in score.tracks for n in t.notes)
    meters = sorted((Fraction(round(ts.time * 4 / tpq), 4), Fraction(4 * ts.numerator,
                     ts.denominator)) for ts in score.time_signatures)  # fmt: skip
    bars, pos = 0, Fraction(0)
    while pos < end:
        length = next((m for t, m in reversed(meters) if t <= pos), Fraction(4))
        later = [t for t, _ in meters if pos < t < pos + length]
        pos = later[0] if later else pos + length
        bars += 1
    return bars


@pytest.mark.parametrize(
    "rel", ["pretty_midi/example.mid", "music21/testPrimitive/test17.mid",
            "music21/usersGuide/cs1-1pre.mid"],
)  # fmt: skip
def test_real_midi_files(rel: str, tmp_path: Path) -> None:
    """Externally made files: odd resolutions, 13 instruments, 12 meter changes (5/4, 12/8)."""
    score = symusic.Score(shared("midi", *rel.split("/")))
    path = _write(score, tmp_path)
    facts = notation_facts(path)
    pitched = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    assert len(facts.parts) == len(pitched)
    assert {p.measures for p in facts.parts} == {_bar_count(score)}
    assert all(p.key_signature and p.time_signature and not p.tuplets for p in facts.parts)
    _assert_full_bars(path)
    _assert_lilypond_clean(path, tmp_path)
