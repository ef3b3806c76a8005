"""Stage 9, edit: exact edits change only what they name, every edit is a version that undo
and redo restore byte for byte, and bad requests are refused in one line with nothing written."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import mido
import numpy as np
import pytest
import symusic
from conftest import SHARED_MEDIA

from composer.cli import main
from composer.edit import editor, history, transforms
from composer.edit.editor import accept, edit, redo, undo
from composer.errors import ComposerError
from composer.music.midi import bar_lines, bar_starts, read_score
from composer.outputs import MARKER, write_marker
from composer.tokens.tokenizer import PITCH, PROGRAM, TIMESIG

TPQ = 480
BAR = 3 * TPQ  # a bar of 3/4 and of 6/8 alike
SCALE = [60, 62, 64, 65, 67, 69, 71, 72, 63]  # C major, and a chromatic E flat
CHORDS = ["C", "G7", "Am", "F", "Em", "Bdim", "Dm", "C"]
MELODY, HARMONY, BASS, DRUMS, CHORD_TRACK = range(5)


def composed() -> symusic.Score:
    """A small score laid out as composer writes one: named role tracks, drums, a chord-symbol
    track, two tempos, 3/4 turning into 6/8 at bar 5, a key signature and markers."""
    s = symusic.Score(TPQ)
    s.time_signatures.extend([symusic.TimeSignature(0, 3, 4), symusic.TimeSignature(4 * BAR, 6, 8)])
    s.tempos.extend([symusic.Tempo(0, qpm=90.0), symusic.Tempo(4 * BAR, qpm=100.0)])
    s.key_signatures.append(symusic.KeySignature(0, 0, 0))
    s.markers.extend([symusic.TextMeta(0, "section 00:00"),
                      symusic.TextMeta(4 * BAR, "cut 00:06.00")])  # fmt: skip
    melody = symusic.Track("melody (Flute)", 73, False)
    for i in range(24):
        melody.notes.append(symusic.Note(i * TPQ, TPQ - 20, SCALE[i % len(SCALE)] + 12, 70 + i))
    melody.controls.extend([symusic.ControlChange(0, 11, 90), symusic.ControlChange(BAR, 11, 100)])
    harmony = symusic.Track("harmony1 (Viola)", 41, False)
    bass = symusic.Track("bass (Cello)", 42, False)
    drums = symusic.Track("percussion", 0, True)
    chords = symusic.Track("chords", 0, False)
    for bar in range(8):
        harmony.notes.append(symusic.Note(bar * BAR, BAR, SCALE[bar] - 5 + 12, 60))
        bass.notes.append(symusic.Note(bar * BAR, BAR, SCALE[bar] - 24, 64))
        drums.notes.extend(symusic.Note(bar * BAR + b * TPQ, 120, 36 + b, 90) for b in range(3))
        chords.lyrics.append(symusic.TextMeta(bar * BAR, CHORDS[bar]))
    s.tracks.extend([melody, harmony, bass, drums, chords])
    return s


def described(track: symusic.Track) -> tuple:
    """Everything of a track an edit may leave alone, notes in a stable order."""
    return (track.name, track.program, track.is_drum,
            sorted((n.time, n.duration, n.pitch, n.velocity) for n in track.notes),
            [(t.time, t.text) for t in track.lyrics],
            [(c.time, c.number, c.value) for c in track.controls])  # fmt: skip


def maps(s: symusic.Score) -> tuple:
    return ([(t.time, t.mspq) for t in s.tempos],
            [(t.time, t.numerator, t.denominator) for t in s.time_signatures],
            [(k.time, k.key, k.tonality) for k in s.key_signatures],
            [(m.time, m.text) for m in s.markers])  # fmt: skip


def same_except(before: symusic.Score, after: symusic.Score, changed: set[int]) -> None:
    """Every track but ``changed`` identical; tracks matched by position."""
    assert len(after.tracks) == len(before.tracks)
    for i, (a, b) in enumerate(zip(before.tracks, after.tracks, strict=True)):
        if i not in changed:
            assert described(a) == described(b), i


def channels(path: Path) -> dict[str, set[int]]:
    """Track name -> the MIDI channels its events use in the file."""
    out = {}
    for chunk in mido.MidiFile(path).tracks:
        name = next((m.name for m in chunk if m.type == "track_name"), "")
        out[name] = {m.channel for m in chunk if hasattr(m, "channel")}
    return out


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"/"
            for p in root.rglob("*")}  # fmt: skip


@pytest.fixture(scope="module")
def plan():
    from composer.plan.planner import make_plan
    from composer.plan.request import PromptFacts

    return make_plan(None, PromptFacts(text="", duration=10.0))


@pytest.fixture
def folder(tmp_path: Path, plan) -> Path:
    """Composer's output folder: the score, plan.json, a marker, and outputs to refresh
    (placeholders of their kind, so an edit must write them again)."""
    out = tmp_path / "out"
    out.mkdir()
    composed().dump_midi(out / "score.mid")
    (out / "plan.json").write_text(json.dumps({"plan": plan.to_dict(), "video": None}))
    (out / "score.musicxml").write_text("<?xml version='1.0'?><score-partwise/>")
    (out / "timeline.png").write_bytes(b"\x89PNG\r\n\x1a\nplaceholder")
    write_marker(out)
    return out


# --- bars and tracks -------------------------------------------------------------------------


def test_bars_follow_the_meter_map_and_a_change_inside_a_bar_cuts_it_short():
    s = composed()
    assert bar_starts(s) == [i * BAR for i in range(8)] and bar_lines(s)[-1] == 8 * BAR
    s.time_signatures.append(symusic.TimeSignature(8 * BAR + TPQ, 4, 4))  # one beat into bar 9
    s.tracks[MELODY].notes.append(symusic.Note(8 * BAR, 3 * TPQ, 60, 80))
    assert bar_lines(s)[8:] == [8 * BAR, 8 * BAR + TPQ, 8 * BAR + 5 * TPQ]
    assert bar_starts(symusic.Score(TPQ)) == [0]  # an empty score still has its first bar


def test_bar_numbers_agree_with_the_musicxml(tmp_path: Path):
    from composer.music.notation import write_musicxml

    s = composed()
    s.time_signatures.append(symusic.TimeSignature(8 * BAR + TPQ, 4, 4))
    s.tracks[MELODY].notes.append(symusic.Note(8 * BAR, 5 * TPQ, 60, 80))
    text = write_musicxml(s, tmp_path / "s.musicxml").read_text()
    first_part = text.split("</part>")[0]
    assert first_part.count("<measure ") == len(bar_starts(s)) == 10


def test_tracks_are_named_by_index_role_or_name_and_an_unknown_one_is_listed():
    s = composed()
    names = (2, "2", "bass", "Bass", "bass (Cello)")
    assert [transforms.track_index(s, t) for t in names] == [2] * 5
    with pytest.raises(ComposerError) as e:
        transforms.track_index(s, "tuba")
    assert "0 melody (Flute), 1 harmony1 (Viola), 2 bass (Cello), 3 percussion" in str(e.value)
    with pytest.raises(ComposerError, match="no track 9: the score has 0 melody"):
        transforms.track_index(s, 9)
    assert transforms.parse_bars("9-12") == (9, 12) and transforms.parse_bars(" 3 ") == (3, 3)
    for bad in ("12-9", "0-2", "nine"):
        with pytest.raises(ComposerError):
            transforms.parse_bars(bad)


# --- exact edits -----------------------------------------------------------------------------


def test_set_instrument_changes_the_program_and_the_name_and_nothing_else():
    s = composed()
    out = transforms.set_instrument(s, "melody", 71)
    assert (out.tracks[0].name, out.tracks[0].program) == ("melody (Clarinet)", 71)
    assert described(out.tracks[0])[3:] == described(s.tracks[0])[3:]
    same_except(s, out, {MELODY})
    assert maps(out) == maps(s) and out.ticks_per_quarter == s.ticks_per_quarter
    for refused in ("percussion", "chords"):
        with pytest.raises(ComposerError, match="cannot choose an instrument"):
            transforms.set_instrument(s, refused, 0)
    lead = transforms.set_instrument(s, 0, 81)  # General MIDI names may hold parentheses
    assert lead.tracks[0].name == "melody (Lead 2 (sawtooth))"
    assert transforms.set_instrument(lead, "melody", 73).tracks[0].name == "melody (Flute)"
    assert transforms.program_of("flute") == 73 and transforms.program_of("cello") == 42
    assert transforms.program_of("string ensemble 1") == 48 and transforms.program_of("40") == 40
    with pytest.raises(ComposerError, match="unknown instrument 'kazoo'"):
        transforms.program_of("kazoo")


def test_transposing_the_whole_score_moves_every_pitched_note_its_chords_and_key():
    s = composed()
    out = transforms.transpose(s, 2)
    for i in (MELODY, HARMONY, BASS):
        assert [n.pitch for n in out.tracks[i].notes] == [n.pitch + 2 for n in s.tracks[i].notes]
        assert described(out.tracks[i])[4:] == described(s.tracks[i])[4:]
    same_except(s, out, {MELODY, HARMONY, BASS, CHORD_TRACK})
    assert [t.text for t in out.tracks[CHORD_TRACK].lyrics] == ["D", "A7", "Bm", "G", "F#m",
                                                                  "C#dim", "Em", "D"]  # fmt: skip
    assert [(k.key, k.tonality) for k in out.key_signatures] == [(2, 0)]  # D major
    assert maps(out)[:2] == maps(s)[:2] and maps(out)[3] == maps(s)[3]
    assert transforms.transpose(transforms.transpose(s, 5), -5) == s  # the round trip is exact


def test_transposing_some_bars_of_some_tracks_leaves_the_rest_alone():
    s = composed()
    out = transforms.transpose(s, -3, tracks=["melody"], bars=(2, 3))
    inside = [BAR <= n.time < 3 * BAR for n in s.tracks[MELODY].notes]
    assert [n.pitch for n in out.tracks[MELODY].notes] == [
        n.pitch - 3 * k for n, k in zip(s.tracks[MELODY].notes, inside, strict=True)
    ]
    same_except(s, out, {MELODY})
    assert maps(out) == maps(s)
    with pytest.raises(ComposerError, match="drum track"):
        transforms.transpose(s, 1, tracks=["percussion"])
    with pytest.raises(ComposerError, match="bars 8-9 are outside the score, which has 8 bars"):
        transforms.transpose(s, 1, bars=(8, 9))
    with pytest.raises(ComposerError) as e:
        transforms.transpose(s, 60)
    assert "outside MIDI's 0-127" in str(e.value) and "\n" not in str(e.value)


def test_a_change_to_the_minor_lowers_the_third_sixth_and_seventh():
    s = composed()
    out = transforms.change_key(s, "C minor")
    # Every line here climbs A B C, so its sixth and seventh stay raised (the melodic minor),
    # but for the melody's last note, an A that leads nowhere; E goes to E flat; the chromatic
    # E flat stays.
    for i in (MELODY, HARMONY, BASS):
        notes = s.tracks[i].notes
        assert [n.pitch for n in out.tracks[i].notes] == [
            n.pitch - (n.pitch % 12 == 4) - (k == len(notes) - 1 and n.pitch % 12 == 9)
            for k, n in enumerate(notes)
        ]
    assert 64 + 12 not in {n.pitch for n in out.tracks[MELODY].notes}  # no E is left
    falling = symusic.Score(TPQ)  # C B A G, then A B C and B A B C: down lowers, up does not
    falling.key_signatures.append(symusic.KeySignature(0, 0, 0))  # C major
    falling.tracks.append(symusic.Track("line", 0, False))
    line = [72, 71, 69, 67, 69, 71, 72, 71, 69, 71, 72]
    falling.tracks[0].notes.extend(symusic.Note(k * TPQ, TPQ, p, 80) for k, p in enumerate(line))
    minor = transforms.change_key(falling, "C minor")
    assert [n.pitch for n in minor.tracks[0].notes] == [72, 70, 68, 67, 69, 71, 72, 70, 69, 71, 72]
    cadence = symusic.Score(TPQ)  # G B D F under a falling B, then C E G: V7 - I
    cadence.key_signatures.append(symusic.KeySignature(0, 0, 0))
    piano = symusic.Track("piano", 0, False)
    piano.notes.extend(symusic.Note(0, 2 * TPQ, p, 80) for p in (55, 59, 62, 65))
    piano.notes.extend(symusic.Note(2 * TPQ, 2 * TPQ, p, 80) for p in (48, 64, 67))
    tune = symusic.Track("tune", 0, False)
    tune.notes.extend(symusic.Note(k * TPQ, TPQ, p, 80) for k, p in enumerate([74, 71, 67, 72]))
    cadence.tracks.extend([tune, piano])
    minor = transforms.change_key(cadence, "C minor")
    assert [n.pitch for n in minor.tracks[0].notes] == [74, 71, 67, 72]  # B falls over V7: kept
    assert sorted(n.pitch for n in minor.tracks[1].notes) == [48, 55, 59, 62, 63, 65, 67]
    assert [(k.key, k.tonality) for k in out.key_signatures] == [(-3, 1)]  # C minor
    # The dominant's chords keep the leading tone, as the minor's cadences have them.
    assert [t.text for t in out.tracks[CHORD_TRACK].lyrics] == ["Cm", "G7", "Ab", "Fm", "Eb",
                                                                  "Bdim", "Ddim", "Cm"]  # fmt: skip
    same_except(s, out, {MELODY, HARMONY, BASS, CHORD_TRACK})
    e_minor = transforms.change_key(s, "E minor")  # up a major third, then the minor degrees
    assert [(k.key, k.tonality) for k in e_minor.key_signatures] == [(1, 1)]
    assert e_minor.tracks[BASS].notes[0].pitch == s.tracks[BASS].notes[0].pitch + 4
    back = transforms.change_key(out, "C major")
    assert [n.pitch for n in back.tracks[BASS].notes] == [n.pitch for n in s.tracks[BASS].notes]
    unsigned = composed()
    unsigned.key_signatures = []
    assert transforms.score_key(unsigned) == (0, "major")  # found from the notes


def test_tempo_mute_and_delete_touch_only_what_they_name():
    s = composed()
    faster = transforms.set_tempo(s, 120)
    assert [round(t.qpm, 2) for t in faster.tempos] == [120.0, 133.33]
    assert [t.time for t in faster.tempos] == [t.time for t in s.tempos]
    same_except(s, faster, set())
    assert maps(faster)[1:] == maps(s)[1:]
    with pytest.raises(ComposerError, match="outside the 20-300 bpm"):
        transforms.set_tempo(s, 1000)
    muted = transforms.mute(s, "harmony1")
    assert muted.tracks[HARMONY].name == "harmony1 (Viola) (muted)"
    assert not len(muted.tracks[HARMONY].notes) and muted.tracks[HARMONY].program == 41
    same_except(s, muted, {HARMONY})
    assert transforms.track_index(muted, "harmony1") == HARMONY  # still named by its role
    quiet = transforms.mute(s, "percussion")
    assert quiet.tracks[DRUMS].is_drum and not len(quiet.tracks[DRUMS].notes)
    with pytest.raises(ComposerError, match="chord symbols"):
        transforms.mute(s, "chords")
    gone = transforms.delete(s, "bass")
    assert [t.name for t in gone.tracks] == [t.name for i, t in enumerate(s.tracks) if i != BASS]
    for a, b in zip([t for i, t in enumerate(s.tracks) if i != BASS], gone.tracks, strict=True):
        assert described(a) == described(b)
    assert maps(gone) == maps(s) and maps(muted) == maps(s)


SHARED_FILES = sorted((SHARED_MEDIA / "midi").rglob("*.mid"))


@pytest.mark.skipif(not SHARED_FILES, reason=f"no shared MIDI files under {SHARED_MEDIA / 'midi'}")
def test_exact_edits_of_files_from_elsewhere_keep_everything_else(tmp_path: Path):
    checked = 0
    for path in SHARED_FILES:
        try:
            s = read_score(path)
        except ComposerError:
            continue  # the corrupt file: its refusal is tested with the folder
        pitched = [i for i, t in enumerate(s.tracks) if not t.is_drum and len(t.notes)]
        if not pitched:
            continue
        i = pitched[-1]
        shift = -1 if max(n.pitch for n in s.tracks[i].notes) == 127 else 1
        edits = [(transforms.transpose(s, shift, tracks=[i]), {i}),
                 (transforms.set_instrument(s, i, 40), {i}), (transforms.mute(s, i), {i}),
                 (transforms.set_tempo(s, 100), set())]  # fmt: skip
        for out, changed in edits:
            same_except(s, out, changed)
            assert maps(out)[1:] == maps(s)[1:], path
            out.dump_midi(tmp_path / "edited.mid")  # and as the file holds it
            same_except(symusic.Score.from_midi(s.dumps_midi()),
                        editor.load_score(tmp_path / "edited.mid"), changed)  # fmt: skip
        assert len(bar_lines(s)) >= 2
        checked += 1
    assert checked >= 10


# --- versions of a folder --------------------------------------------------------------------


def test_each_edit_is_a_version_that_undo_and_redo_restore_byte_for_byte(folder: Path):
    original = (folder / "score.mid").read_bytes()
    (folder / "score.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")  # rendered again below
    first = edit(folder, transpose=2, tracks="melody,bass")
    assert (folder / "score.wav").stat().st_size > 10_000
    assert first.version == 1 and first.notes == []
    edited = (folder / "score.mid").read_bytes()
    assert edited != original
    assert (folder / "versions" / "000" / "score.mid").read_bytes() == original
    assert (folder / "versions" / "001" / "score.mid").read_bytes() == edited
    kept = folder / "versions" / "001"
    assert (kept / "plan.json").read_bytes() == (folder / "plan.json").read_bytes()
    timeline = (folder / "timeline.png").read_bytes()
    assert timeline.startswith(b"\x89PNG") and len(timeline) > 1000  # drawn again
    assert b"score-partwise" in (folder / "score.musicxml").read_bytes()
    names = ("score.mid", "timeline.png", "score.musicxml", "edit_history.json", "versions/001")
    assert set(first.files) >= {folder / n for n in names}
    before = channels(folder / "score.mid")
    second = edit(folder, mute="harmony1")
    assert second.version == 2
    after = channels(folder / "score.mid")  # the muted track keeps its place, so every channel
    assert after.pop("harmony1 (Viola) (muted)") == before.pop("harmony1 (Viola)")
    assert after == before
    muted = (folder / "score.mid").read_bytes()
    kept = editor.load_score(folder / "score.mid").tracks[HARMONY]  # in the file, though silent
    assert (kept.name, kept.program, len(kept.notes)) == ("harmony1 (Viola) (muted)", 41, 0)
    assert undo(folder).version == 1 and (folder / "score.mid").read_bytes() == edited
    assert undo(folder).version == 0 and (folder / "score.mid").read_bytes() == original
    with pytest.raises(ComposerError, match="nothing to undo"):
        undo(folder)
    assert redo(folder).version == 1 and (folder / "score.mid").read_bytes() == edited
    assert redo(folder).version == 2 and (folder / "score.mid").read_bytes() == muted
    with pytest.raises(ComposerError, match="no edit made from version 2"):
        redo(folder)
    record = history.load(folder)
    v = record.version(1)
    assert (v.parent, v.method, v.span.tracks) == (0, "exact", [MELODY, BASS])
    assert (v.request.transpose, v.request.tracks) == (2, ["melody", "bass"])
    assert v.sha256 == history.sha256(edited) and record.current == 2
    # After an undo an edit starts a branch; the undone version stays in versions/.
    undo(folder)
    third = edit(folder, tempo=60)
    assert third.version == 3 and history.load(folder).version(3).parent == 1
    assert (folder / "versions" / "002" / "score.mid").read_bytes() == muted
    assert undo(folder).version == 1


def test_the_folder_stays_composers_own_so_force_may_replace_it(folder: Path):
    from composer.outputs import check_folder_target

    edit(folder, key="A minor")
    edit(folder, preview=True, delete="percussion")
    edit(folder, preview=True, mute="bass")  # replaces the first preview's candidates
    assert history.load(folder).preview.request.mute == ["bass"]
    marker = json.loads((folder / MARKER).read_text())["files"]
    assert {"versions", "edit_history.json", "candidates"} <= set(marker)
    check_folder_target(folder, force=True)  # every entry, nested ones too, is composer's


def test_a_score_changed_on_disk_is_refused_and_nothing_written(folder: Path):
    edit(folder, transpose=1)
    changed = composed()
    changed.tracks[0].notes[0].pitch = 90
    changed.dump_midi(folder / "score.mid")
    before = listing(folder.parent)
    for attempt in (lambda: edit(folder, transpose=1), lambda: undo(folder)):
        with pytest.raises(ComposerError) as e:
            attempt()
        assert "score.mid: changed since composer wrote version 1" in str(e.value)
        assert "\n" not in str(e.value)
    assert listing(folder.parent) == before


@pytest.mark.parametrize(
    ("options", "message"),
    [({"bars": "8-9", "transpose": 1}, "bars 8-9 are outside the score, which has 8 bars"),
     ({"mute": "tuba"}, "no track 'tuba': the score has 0 melody (Flute)"),
     ({"instrument": {"melody": "kazoo"}}, "unknown instrument 'kazoo'"),
     ({"key": "H major"}, "unknown key 'H major'"),
     ({"prompt": "busier", "transpose": 1}, "--prompt regenerates bars and does not go with"),
     ({"key": "D", "transpose": 1}, "--key and --transpose both move every pitch"),
     ({"bars": "1-2", "tempo": 80}, "--bars and --tracks choose what --transpose"),
     ({"transpose": 1, "n": 3}, "an exact edit has one result"),
     ({}, "nothing to edit"),
     ({"transpose": 0}, "the edit leaves the score as it is"),
     ({"delete": ["melody", "harmony1", "bass", "percussion"]}, "would leave no notes"),
     ({"transpose": 1, "out": "elsewhere"}, "-o is for editing a MIDI file")],
)  # fmt: skip
def test_bad_requests_are_one_line_and_write_nothing(folder: Path, options, message):
    before = listing(folder.parent)
    with pytest.raises(ComposerError) as e:
        edit(folder, **options)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert listing(folder.parent) == before


def test_a_corrupt_midi_file_is_refused_in_words(tmp_path: Path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10\x00\x00\x90")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "score.mid").write_bytes(bad.read_bytes()[:20])
    before = listing(tmp_path)
    for target in (bad, tmp_path / "folder"):
        with pytest.raises(ComposerError) as e:
            edit(target, transpose=1)
        assert "not a readable MIDI file" in str(e.value) and "\n" not in str(e.value)
    assert listing(tmp_path) == before


def test_regenerating_bars_without_the_span_decoder_says_so(folder: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "composer.edit.span", None)  # as if the module were absent
    before = listing(folder.parent)
    with pytest.raises(ComposerError, match="needs the span decoder, which this version lacks"):
        edit(folder, bars="2-3", prompt="busier")
    with pytest.raises(ComposerError, match="add --preview"):
        edit(folder, bars="2-3", n=2)
    assert listing(folder.parent) == before


def test_editing_a_midi_file_writes_a_new_folder_and_leaves_the_file(tmp_path: Path):
    source = tmp_path / "tune.mid"
    composed().dump_midi(source)
    original = source.read_bytes()
    res = edit(source, instrument={"melody": "oboe"})
    out = tmp_path / "tune-edit"
    assert res.folder == out and res.version == 1 and source.read_bytes() == original
    assert (out / "versions" / "000" / "score.mid").read_bytes() == original
    assert {"score.mid", "score.wav", "score.musicxml", "edit_history.json", "versions",
            MARKER} == {p.name for p in out.iterdir()}  # fmt: skip
    assert (out / "score.wav").read_bytes()[:4] == b"RIFF"
    edited = editor.load_score(out / "score.mid")
    assert edited.tracks[MELODY].name == "melody (Oboe)" and edited.tracks[MELODY].program == 68
    same_except(composed(), edited, {MELODY})
    assert channels(out / "score.mid") == {
        ("melody (Oboe)" if k == "melody (Flute)" else k): v for k, v in channels(source).items()
    }
    with pytest.raises(ComposerError, match="already exists"):
        edit(source, tempo=80)
    assert edit(source, tempo=80, force=True).version == 1  # composer's own folder, replaced
    assert editor.load_score(out / "score.mid").tracks[MELODY].name == "melody (Flute)"


def test_a_preview_waits_beside_the_score_until_one_is_accepted(folder: Path):
    original = (folder / "score.mid").read_bytes()
    res = edit(folder, preview=True, transpose=-12, tracks="bass")
    candidate = folder / "candidates" / "1" / "score.mid"
    assert res.version == 0 and (folder / "score.mid").read_bytes() == original
    assert (folder / "candidates" / "1" / "score.wav").read_bytes()[:4] == b"RIFF"
    assert candidate in res.files
    with pytest.raises(ComposerError, match="has candidates 1-1, not 2"):
        accept(folder, 2)
    taken = accept(folder, 1)
    assert taken.version == 1 and (folder / "score.mid").read_bytes() == candidate.read_bytes()
    assert history.load(folder).version(1).request.transpose == -12
    with pytest.raises(ComposerError, match="has no candidates waiting"):
        accept(folder, 1)
    assert undo(folder).version == 0 and (folder / "score.mid").read_bytes() == original


def test_a_scored_video_is_muxed_again_and_a_tempo_edit_says_the_cuts_moved(folder, plan):
    from composer.video.synthetic import Shot, make_clip

    clip = folder.parent / "clip.mp4"
    make_clip(clip, [Shot(2.0), Shot(2.0)], size=(160, 90))
    (folder / "plan.json").write_text(json.dumps({"plan": plan.to_dict(), "video": str(clip)}))
    (folder / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    res = edit(folder, tempo=110)
    assert folder / "video.mp4" in res.files and (folder / "video.mp4").stat().st_size > 10_000
    assert [n for n in res.notes if "no longer fall on the bar lines" in n]
    clip.rename(folder.parent / "moved.mp4")
    res = edit(folder, tempo=100)
    assert [n for n in res.notes if "video.mp4 left as it was" in n and str(clip) in n]


def test_the_command_line_edits_and_undoes(folder: Path, capsys):
    original = (folder / "score.mid").read_bytes()
    assert main(["edit", str(folder), "--instrument", "bass=tuba", "--transpose", "-2"]) == 0
    assert "version 1 is current" in capsys.readouterr().out
    bass = editor.load_score(folder / "score.mid").tracks[BASS]
    assert (bass.name, bass.program) == ("bass (Tuba)", 58)
    assert main(["edit", str(folder), "--undo"]) == 0
    assert (folder / "score.mid").read_bytes() == original
    assert main(["edit", str(folder), "--undo", "--tempo", "90"]) == 1
    err = capsys.readouterr().err
    assert "--undo, --redo and --accept take no edit options (--tempo)" in err
    assert err.count("\n") == 1


def test_the_history_works_on_its_own(tmp_path: Path):
    folder = tmp_path / "piece"
    folder.mkdir()
    composed().dump_midi(folder / "score.mid")
    original = (folder / "score.mid").read_bytes()
    history.check_unchanged(folder)  # nothing recorded yet: nothing to compare
    changed = transforms.set_tempo(composed(), 70).dumps_midi()
    v = history.record(folder, changed, history.EditRequest(tempo=70.0), seed=3)
    assert (v.number, v.parent, v.seed, v.method) == (1, 0, 3, "exact")
    saved = json.loads((folder / "edit_history.json").read_text())
    assert saved["current"] == 1 and [x["number"] for x in saved["versions"]] == [0, 1]
    assert set(saved["versions"][1]) >= {"request", "seed", "span", "method", "sha256", "time"}
    assert (folder / "score.mid").read_bytes() == changed
    assert history.undo(folder).number == 0 and (folder / "score.mid").read_bytes() == original
    # Candidates made from one version cannot be accepted once another is current.
    history.propose(folder, [changed], history.EditRequest(tempo=70.0))
    history.redo(folder)
    with pytest.raises(ComposerError, match="made from version 0, but version 1 is current"):
        history.accept(folder, 1)


def test_regenerated_candidates_are_previewed_and_one_accepted(folder: Path, monkeypatch, plan):
    calls = []

    def regenerate(score, bars, tracks, prompt, seed, n, plan=None, progress=None, starts=None):
        calls.append((bars, tracks, prompt, seed, n, starts, type(plan).__name__))
        return [transforms.transpose(score, k + 1, tracks=tracks) for k in range(n)]

    regenerate.__module__ = "composer.edit.span"
    monkeypatch.setitem(
        sys.modules, "composer.edit.span", types.SimpleNamespace(regenerate=regenerate)
    )
    original = (folder / "score.mid").read_bytes()
    res = edit(folder, bars="2-3", tracks="melody", prompt="busier", n=2, preview=True, seed=5)
    # The span decoder counts bars from 0 with the end excluded, against every bar line.
    assert calls == [((1, 3), [MELODY], "busier", 5, 2, bar_lines(composed()), "Plan")]
    assert res.version == 0 and (folder / "score.mid").read_bytes() == original
    second = (folder / "candidates" / "2" / "score.mid").read_bytes()
    assert accept(folder, 2).version == 1 and (folder / "score.mid").read_bytes() == second
    v = history.load(folder).version(1)
    assert (v.method, v.span.bars, v.span.tracks, v.seed) == (
        "composer.edit.span.regenerate", [2, 3], [MELODY], 5)  # fmt: skip


def test_the_span_decoder_takes_the_call_the_editor_makes():
    import inspect

    from composer.edit.span import regenerate

    s = composed()
    inspect.signature(regenerate).bind(s, (1, 3), [MELODY], "busier", 0, 2, plan=None,
                                       progress=lambda *a: None, starts=bar_lines(s))  # fmt: skip


def test_the_decoder_writes_the_span_again_and_leaves_the_rest(folder: Path):
    """The shipped decoder rewrites the melody of bars 2-3 sparser: the other tracks, the
    melody outside those bars, the maps and markers stay as they were."""
    before = composed()
    lines = bar_lines(before)
    res = edit(folder, bars="2-3", tracks="melody", prompt="sparser", seed=1)
    after = symusic.Score(str(folder / "score.mid"))
    same_except(before, after, {MELODY})
    assert maps(after) == maps(before)
    lo, hi = lines[1], lines[3]

    def outside(s: symusic.Score) -> list[tuple]:
        return [(n.time, n.duration, n.pitch, n.velocity) for n in s.tracks[MELODY].notes
                if not lo <= n.time < hi]  # fmt: skip

    inside = [n for n in after.tracks[MELODY].notes if lo <= n.time < hi]
    assert outside(after) == outside(before)
    assert inside and all(n.end <= hi for n in inside)
    old = {n.time for n in before.tracks[MELODY].notes if lo <= n.time < hi}
    assert len({n.time for n in inside}) < len(old)  # sparser, as asked
    assert res.version == 1 and history.load(folder).version(1).span.bars == [2, 3]


def test_eval_edit_keeps_the_rest_and_reports_each_request(tmp_path: Path, folder: Path):
    """Files and composer's folders are edited with every request; the style requests are
    read by the style classifier; a file with no notes is skipped with its reason."""
    from composer.evaluate.editing import REQUESTS, eval_edit

    path = tmp_path / "piece.mid"
    composed().dump_midi(path)
    (tmp_path / "empty.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x00\x01\xe0")
    report = eval_edit([path, tmp_path / "empty.mid", folder], out=tmp_path / "report")
    assert [t.request for t in report.trials] == list(REQUESTS) * 2
    assert {t.score for t in report.trials} == {"out/score.mid", "piece.mid"}
    assert all(t.kept for t in report.trials)
    assert all(t.bars[1] - t.bars[0] == 3 for t in report.trials)
    # Both scores have a harmony and a bass beside the melody: the melody is measured on them.
    assert all(0 <= min(t.consonance) <= max(t.consonance) <= 1 for t in report.trials)
    assert "attacks consonant with the other tracks" in report.table()
    # Both are in C major with parts beside the melody: each goes into C minor both ways.
    assert [(t.score, t.key, t.kept) for t in report.keys] == [
        ("out/score.mid", "Cm", True), ("piece.mid", "Cm", True)]  # fmt: skip
    for t in report.keys:
        assert t.chord_tones[0] <= t.chord_tones[1] > 0 and t.chord_tones[2] <= t.chord_tones[3]
    for t in report.trials:
        styled = t.request.startswith("in the style")
        assert (t.style is not None) == styled
        assert not styled or (0 <= min(t.style) and max(t.style) <= 1)
    assert report.skipped and report.skipped[0].startswith("empty.mid: ")
    assert "moves the span" in (tmp_path / "report" / "edit.txt").read_text()


def piano_piece() -> symusic.Score:
    """One piano track of 8 bars of 4/4: a melody over held chords and a bass on each beat."""
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    piano = symusic.Track("Piano", 0, False)
    for bar in range(8):
        t = bar * 4 * TPQ
        piano.notes.extend(symusic.Note(t, 4 * TPQ, p, 60) for p in (60, 64, 67))
        for beat in range(4):
            piano.notes.append(symusic.Note(t + beat * TPQ, TPQ, 72 + SCALE[(bar + beat) % 7] - 60,
                                            80))  # fmt: skip
            piano.notes.append(symusic.Note(t + beat * TPQ, TPQ // 2, 36 + 7 * (beat % 2), 70))
    s.tracks.append(piano)
    return s


def test_a_one_part_piano_score_is_read_as_melody_inner_voice_and_bass():
    from composer.edit.span import _voices, track_roles

    s = piano_piece()
    assert track_roles(s) == {0: (0, 1, 5)}
    parts = _voices(list(s.tracks[0].notes))
    assert {n.pitch for n in parts[0]} <= set(range(72, 84))  # the tune, always on top
    assert {n.pitch for n in parts[5]} == {36, 43}  # the bass line, always at the bottom
    assert {n.pitch for n in parts[1]} == {60, 64, 67}  # the held chord between them
    assert sum(map(len, parts.values())) == len(s.tracks[0].notes)
    # Two lines of a score of several tracks stay one role each, by mean pitch.
    assert track_roles(composed()) == {0: (0,), 1: (1,), 2: (5,)}


def test_a_piano_span_is_written_again_in_all_its_voices():
    """The infill adapter rewrites bars 3-4 of a one-track piano piece: the notes outside them
    are kept, and the new bars have a melody over other voices (notes attacked together)."""
    from composer.edit.span import regenerate

    s = piano_piece()
    lines = bar_lines(s)
    (out,) = regenerate(s, (2, 4), [0], "more intense", 0, 1, starts=lines)
    lo, hi = lines[2], lines[4]

    def outside(score):
        return sorted((n.time, n.duration, n.pitch, n.velocity) for n in score.tracks[0].notes
                      if not lo <= n.time < hi)  # fmt: skip

    assert outside(out) == outside(s)
    inside = [n for n in out.tracks[0].notes if lo <= n.time < hi]
    times = [n.time for n in inside]
    assert inside and len(set(times)) < len(times)  # chords or two voices at once
    assert all(n.end <= hi for n in inside)


def test_silent_bars_keep_their_place_in_the_context():
    """Bars with no notes after the last note are written as empty bars, so the decoder reads
    the span's true distance from the music around it."""
    from composer.edit.span import _body
    from composer.model.checkpoint import cached_checkpoint

    tok = cached_checkpoint().tokenizer
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, 3, 4))
    t = symusic.Track("melody", 0, False)
    t.notes.append(symusic.Note(0, TPQ, 60, 80))
    s.tracks.append(t)
    ids = _body(tok, s, "folk", (0, "major"), 3)
    assert ids.count(tok.bar_id) == 3 and ids[0] == tok.bar_id
    assert _body(tok, symusic.Score(TPQ), "folk", (0, "major"), 0) == []


def test_consonance_counts_attacks_that_agree_with_the_tracks_kept():
    from composer.edit.span import consonance

    s = symusic.Score(TPQ)
    top, low = symusic.Track("a", 0, False), symusic.Track("b", 0, False)
    low.notes.append(symusic.Note(0, 4 * TPQ, 48, 80))  # C held under four attacks
    top.notes.extend(symusic.Note(k * TPQ, TPQ, p, 80) for k, p in enumerate([64, 67, 66, 72]))
    s.tracks.extend([top, low])
    assert consonance(s, [0], 0, 4 * TPQ) == 0.75  # E, G and C agree with it; F sharp does not


def test_a_track_is_written_against_the_kept_tracks_in_the_score_meter(monkeypatch):
    """Writing the bass of bars 2-3 of a 3/4 score again: the melody and harmony of those bars
    (the roles below the bass) are given where they stand, the decoder writes the bass, and
    the context is read in 3/4 (a role score without the score's meters was read in 4/4).
    Written again, the melody is given nothing: the parts above it are written afresh."""
    import composer.model.decode as decoding
    from composer.edit.span import regenerate

    asked = []
    real = decoding.decode

    def spy(ckpt, req, progress=None):
        asked.append((ckpt.tokenizer, req))
        return real(ckpt, req)

    monkeypatch.setattr(decoding, "decode", spy)
    s = composed()
    regenerate(s, (1, 3), [BASS], None, 0, 1, starts=bar_lines(s))
    tok, req = asked[0]
    assert req.roles == (5,) and req.meter == (3, 4)
    sigs = {tok.vocab["TimeSig_3/4"]} | {i for i in req.primer if tok.kind[i] == TIMESIG}
    assert sigs == {tok.vocab["TimeSig_3/4"]}
    assert len(req.kept) == 2
    for bar, groups in enumerate(req.kept, 1):  # three melody notes, the harmony on the first
        values = [[int(tok.value[t]) for t in ts if tok.kind[t] in (PROGRAM, PITCH)]
                  for _, ts in groups]  # fmt: skip
        tune = [SCALE[(3 * bar + j) % len(SCALE)] + 12 for j in range(3)]
        assert [pos for pos, _ in groups] == [0, 12, 24]
        assert values == [[0, tune[0], 1, SCALE[bar] + 7], [0, tune[1]], [0, tune[2]]]
    regenerate(s, (1, 3), [MELODY], None, 0, 1, starts=bar_lines(s))
    assert asked[1][1].roles == (0, 1, 5) and not any(asked[1][1].kept)


def minor_song() -> symusic.Score:
    """Eight bars of 4/4 in A minor whose even bars sound E minor, the dominant without its
    leading tone: a melody, a chord part and a bass."""
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    s.key_signatures.append(symusic.KeySignature(0, 0, 1))  # A minor
    melody = symusic.Track("melody (Flute)", 73, False)
    chords = symusic.Track("harmony1 (Viola)", 41, False)
    bass = symusic.Track("bass (Cello)", 42, False)
    symbols = symusic.Track("chords", 0, False)
    for bar in range(8):
        lo, triad = bar * 4 * TPQ, ((57, 60, 64), (52, 55, 59))[bar % 2]
        symbols.lyrics.append(symusic.TextMeta(lo, ("Am", "Em")[bar % 2]))
        line = ((69, 72, 76, 72), (71, 67, 64, 67))[bar % 2]
        melody.notes.extend(symusic.Note(lo + k * TPQ, TPQ, p + 12, 80) for k, p in enumerate(line))
        chords.notes.extend(symusic.Note(lo, 4 * TPQ, p, 70) for p in triad)
        bass.notes.append(symusic.Note(lo, 4 * TPQ, triad[0] - 12, 70))
    s.tracks.extend([melody, chords, bass, symbols])
    return s


def test_a_minor_dominant_has_the_accompaniment_written_again_against_the_melody():
    """Where a piece in the minor sounds the dominant without its leading tone, the decoder
    writes the accompaniment again in the harmonic minor against the melody, which stays; a
    major piece, or one part alone, keeps the degrees as they moved."""
    from composer.edit.span import reharmonise
    from composer.music.harmony import chord_of

    song = minor_song()
    out, line = reharmonise(song, seed=0)
    assert out.tracks[0].notes == song.tracks[0].notes
    assert "harmony1 (Viola), bass (Cello): written again against the melody in bars 1-8" in line
    harmonic = {9, 11, 0, 2, 4, 5, 8}  # A harmonic minor: G sharp, not G
    for i in (1, 2):
        new, old = out.tracks[i].notes, song.tracks[i].notes
        assert [(n.time, n.pitch) for n in new] != [(n.time, n.pitch) for n in old]
        assert new and all(n.end <= 32 * TPQ for n in new)
        assert sum(n.pitch % 12 in harmonic for n in new) >= 0.9 * len(new)
    lyrics = out.tracks[3].lyrics  # each symbol names the chord the new notes make
    for lyric, end in zip(lyrics, [x.time for x in lyrics[1:]] + [32 * TPQ], strict=True):
        weights = np.zeros(12)
        for t in out.tracks:
            for n in t.notes:
                weights[n.pitch % 12] += max(0, min(n.end, end) - max(n.time, lyric.time))
        assert transforms.chord_name(chord_of(weights)) in (lyric.text, None)
    assert [x.text for x in lyrics] != [x.text for x in song.tracks[3].lyrics]
    same, why = reharmonise(composed(), seed=0)  # C major
    assert same is not None and "major keeps right" in why
    alone = transforms.change_key(piano_piece(), "A minor")  # one part: nothing to set apart
    same, why = reharmonise(alone, seed=0)
    assert same is alone and "no separate melody" in why
