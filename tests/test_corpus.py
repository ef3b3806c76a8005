"""The corpus stage: music21 scores and user files -> role-labelled symusic scores."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

symusic = pytest.importorskip("symusic")
pytest.importorskip("music21")

from music21 import converter, corpus, dynamics, key, meter, note, stream  # noqa: E402

from composer.music.corpus import (  # noqa: E402
    STYLE_OF_COLLECTION,
    SkippedPiece,
    assign_splits,
    iter_corpus,
    iter_files,
    split_of,
    style_of,
)
from composer.music.scores import ROLES, TPQ, CorpusPiece, bar_lines, from_music21  # noqa: E402
from composer.train.manifest import Manifest  # noqa: E402


def _starts_on_bar_lines(piece: CorpusPiece, m21: stream.Score) -> list[int]:
    """Ticks of the music21 measures (after the pickup) that miss the piece's bar lines."""
    measures = list(m21.parts[0].getElementsByClass(stream.Measure))
    pad = round(measures[0].paddingLeft * TPQ)
    lines = set(bar_lines(piece.meters, piece.score.end()))
    ticks = [round(m.offset * TPQ) + pad for m in measures[1:]]
    return [t for t in ticks if t not in lines]


@pytest.fixture(scope="module")
def chorale() -> tuple[stream.Score, CorpusPiece]:
    score = corpus.parse("bach/bwv66.6")
    return score, from_music21(
        corpus.parse("bach/bwv66.6"), "bach/bwv66.6.mxl", collection="bach", style="chorale"
    )


def test_chorale_roles_and_note_counts(chorale):
    score, piece = chorale
    assert [t.name for t in piece.score.tracks] == ["melody", "harmony1", "harmony2", "bass"]
    assert [t.program for t in piece.score.tracks] == [0, 1, 2, 5]
    assert piece.score.ticks_per_quarter == TPQ
    assert piece.n_parts == 4
    # Soprano, alto, tenor, bass are already in descending mean pitch.
    expected = [len(p.stripTies().flatten().notes) for p in score.parts]
    assert [len(t.notes) for t in piece.score.tracks] == expected
    assert (piece.key_tonic, piece.key_mode) == (6, "minor")  # F# minor
    assert piece.meters == [(0, 4, 4)]


def test_chorale_pickup_lands_on_bar_lines(chorale):
    score, piece = chorale
    first = score.parts[0].getElementsByClass(stream.Measure).first()
    assert first.paddingLeft == 3.0  # a one-beat pickup
    assert piece.score.tracks[0].notes[0].time == 3 * TPQ
    assert _starts_on_bar_lines(piece, score) == []
    assert piece.section_starts[0] == 0
    assert all(t % (4 * TPQ) == 0 for t in piece.section_starts)  # fermatas end phrases


def test_essen_pickup_lands_on_bar_lines():
    score = corpus.parse("essenFolksong/altdeu10", number=1)
    first = score.parts[0].getElementsByClass(stream.Measure).first()
    assert first.paddingLeft > 0
    piece = from_music21(corpus.parse("essenFolksong/altdeu10", number=1), "essen#1")
    assert piece.score.tracks[0].notes[0].time == round(first.paddingLeft * TPQ)
    assert _starts_on_bar_lines(piece, score) == []


def test_essen_reused_time_signature_converts():
    # Tune 75 of han1 returns to 4/8 after a 1/4 bar with the same TimeSignature object, which
    # breaks music21's own flatten() and MIDI export.
    piece = from_music21(corpus.parse("essenFolksong/han1", number=75), "han1#75")
    ticks = [t for t, _, _ in piece.meters]
    assert piece.meters[0] == (0, 4, 8)
    assert (3600, 1, 4) in piece.meters  # the 1/4 bar, 7.5 quarters in
    assert ticks == sorted(set(ticks))
    reference = corpus.parse("essenFolksong/han1", number=75)
    assert piece.n_notes == len(reference.parts[0].stripTies().flatten().notes)
    # Bars the notation leaves short (3/8 in 4/8) are given their own meter.
    assert (1920, 3, 8) in piece.meters
    assert any("irregular" in w for w in piece.warnings)


def test_bars_split_by_repeat_signs():
    # The pickup is repeated with the strain: each three-beat closing bar and the one-beat
    # pickup after it make one 4/4 bar, so no meter change is needed.
    abc = "X:1\nT:a\nM:4/4\nL:1/4\nK:D\n|:A|defg|abc'a|bagf|e3:|A|defg|abc'a|bagf|e3|]\n"
    piece = from_music21(converter.parse(abc, format="abc"), "user/a.abc")
    assert piece.meters == [(0, 4, 4)]
    melody = piece.score.tracks[0]
    assert melody.notes[0].time == 3 * TPQ
    assert len(melody.notes) == 3 * 14  # the repeat is expanded
    assert piece.warnings == []
    # Here the repeat goes back after the pickup: the three-beat bar stands alone as 3/4.
    abc = "X:1\nT:b\nM:4/4\nL:1/4\nK:D\nA|:defg|abc'a|bagf|e3:|\n"
    piece = from_music21(converter.parse(abc, format="abc"), "user/b.abc")
    bar = 4 * TPQ
    assert piece.meters == [(0, 4, 4), (4 * bar, 3, 4), (4 * bar + 3 * TPQ, 4, 4)]
    assert piece.warnings == ["1 irregular bars given their own meter"]


def test_end_repeats_without_start_repeat_one_strain_each():
    # music21 alone sends every end repeat back to the beginning: 2 + 4 + 8 plays of strain A.
    abc = "X:1\nT:c\nM:4/4\nL:1/4\nK:C\nCDEF|GABc:|defg|cdef:|efga|gfed:|\n"
    piece = from_music21(converter.parse(abc, format="abc"), "user/c.abc")
    assert piece.n_notes == 3 * 2 * 8
    assert piece.warnings == []


def test_dynamics_set_velocities():
    part = stream.Part([meter.TimeSignature("4/4")])
    for mark, pitch in [(None, "C4"), ("p", "D4"), (None, "E4"), ("ff", "F4"), ("mf", "G4")]:
        if mark:
            part.append(dynamics.Dynamic(mark))
        part.append(note.Note(pitch, quarterLength=1))
    piece = from_music21(part.makeMeasures(), "user/dynamics")
    assert [n.velocity for n in piece.score.tracks[0].notes] == [80, 55, 55, 112, 80]


@pytest.mark.parametrize(
    ("key_line", "tonic", "mode"),
    [("K:G", 7, "major"), ("K:Em", 4, "minor"), ("K:ADor", 9, "minor"), ("K:DMix", 2, "major")],
)
def test_written_key_and_mode(key_line, tonic, mode):
    abc = f"X:1\nT:k\nM:3/4\nL:1/4\n{key_line}\nDEF|GAB|c3|]\n"
    piece = from_music21(converter.parse(abc, format="abc"), "user/k.abc")
    assert (piece.key_tonic, piece.key_mode) == (tonic, mode)


def test_bare_key_signature_is_analysed():
    # Kern gives a key signature without a mode; the key then comes from analysis.
    part = stream.Part([meter.TimeSignature("4/4"), key.KeySignature(-3)])
    for name in ["C4", "E-4", "G4", "C5", "B-4", "G4", "E-4", "C4"] * 2:
        part.append(note.Note(name, quarterLength=1))
    piece = from_music21(part.makeMeasures(), "user/c-minor")
    assert (piece.key_tonic, piece.key_mode) == (0, "minor")


def test_split_is_deterministic_and_disjoint():
    ids = [f"essenFolksong/han1.abc#{i}" for i in range(4000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    assert set(splits) == {"train", "val", "test"}
    for name in ("val", "test"):
        assert 0.03 < splits.count(name) / len(ids) < 0.07
    assert [split_of(i, seed=1) for i in ids] != splits
    assert split_of("x", val=0.0, test=0.0) == "train"


def test_assign_splits_tops_up_small_styles_only():
    big = [(f"essenFolksong/han1.abc#{i}", "folk") for i in range(2000)]
    small = [(f"trecento/piece{i}.xml", "medieval") for i in range(99)]
    tiny = [(f"mozart/k{i}.mxl", "piano") for i in range(7)]
    pieces = big + small + tiny
    splits = assign_splits(pieces)
    # A large style keeps exactly the per-piece hash split.
    assert splits[:2000] == [split_of(i) for i, _ in big]
    # A small one holds out min(10, n // 8) pieces in each of val and test.
    medieval = splits[2000:2099]
    assert medieval.count("val") == medieval.count("test") == 10
    # The top-up only moves train pieces: what the hash held out stays held out.
    for (pid, _), split in zip(small, medieval, strict=True):
        if split_of(pid) != "train":
            assert split == split_of(pid)
    # Fewer than 8 pieces: nothing to spare, the hash decides.
    assert splits[2099:] == [split_of(i) for i, _ in tiny]
    # A style's split depends on its own pieces, not their order or the other styles.
    order = np.random.default_rng(0).permutation(len(pieces))
    shuffled = assign_splits([pieces[i] for i in order])
    assert [shuffled[list(order).index(i)] for i in range(len(pieces))] == splits
    assert assign_splits(small) == medieval
    assert assign_splits(small, seed=1) != medieval


def test_style_names():
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", s) for s in STYLE_OF_COLLECTION.values())
    assert style_of("bach/bwv66.6.mxl") == "chorale"
    assert style_of("mozart/k545/movement1_exposition.mxl") == "piano"
    assert style_of("mozart/k458/movement1.mxl") == "quartet"
    assert style_of("schumann_robert/opus41no1/movement1.mxl") == "quartet"
    assert style_of("schumann_robert/dichterliebe_no2.xml") == "other"
    assert style_of("schumann_clara/polonaise_op1n1.mxl") == "piano"
    assert style_of("trecento/PMFC_04-Cara mi donna.xml") == "medieval"
    assert style_of("weber/concertino_clarinet.mxl") == "other"


def test_iter_corpus_opus_tunes():
    items = list(iter_corpus(["nottingham-dataset"]))
    assert [type(i) for i in items] == [CorpusPiece, CorpusPiece]
    assert [i.id for i in items] == [
        "nottingham-dataset/reelsa-c.abc#80",
        "nottingham-dataset/reelsa-c.abc#81",
    ]
    assert {i.style for i in items} == {"fiddle"}
    # Chord symbols are annotations, not notes: one melody track only.
    assert all([t.name for t in i.score.tracks] == ["melody"] for i in items)
    assert len(list(iter_corpus(["nottingham-dataset"], limit=1))) == 1
    with pytest.raises(ValueError, match="no such corpus collection"):
        list(iter_corpus(["nosuch"]))


def test_josquin_voices_merge_into_one_score():
    # Each X: tune of a Josquin file is one voice of the same chanson.
    canon, chanson = iter_corpus(["josquin"], limit=2)
    assert canon.id == "josquin/4vPerIlludAveProlatum.abc"
    assert canon.n_parts == 2  # a canon: two written voices
    assert chanson.id == "josquin/adieuMesAmours.abc"
    assert chanson.style == "renaissance"
    assert chanson.n_parts == 4
    assert [t.name for t in chanson.score.tracks] == ["melody", "harmony1", "harmony2", "bass"]


def test_book_numbered_tunes_deduplicated(tmp_path):
    folder = tmp_path / "oneills1850"
    folder.mkdir()
    tune = "X:{}\nT:{}\nM:2/4\nL:1/8\nK:G\nGABc|{}|d4|]\n\n"
    (folder / "a.abc").write_text(tune.format(7, "The Kid", "dedc") + tune.format(8, "Kid", "B4"))
    # Another transcriber's copy of O'Neill's tune 7 (one note differs), and tune 9.
    (folder / "b.abc").write_text(tune.format(7, "Kid.", "dBdc") + tune.format(9, "Kid", "g4"))
    items = list(iter_files([folder]))
    assert [i.id for i in items] == [f"oneills1850/{f}.abc#{x}" for f, x in "a7 a8 b7 b9".split()]
    assert [type(i) for i in items] == [CorpusPiece, CorpusPiece, SkippedPiece, CorpusPiece]
    assert items[2].reason == "duplicate of oneills1850/a.abc#7"


def _write_midi(path: Path, tpq: int = 96) -> None:
    score = symusic.Score(tpq)
    score.time_signatures.append(symusic.TimeSignature(0, 3, 4))
    # (program, pitches): a bass line, a melody, a middle voice, and drums.
    for program, pitches, drum in [
        (32, [36, 43, 41, 36], False),
        (73, [72, 74, 76, 77], False),
        (0, [60, 64, 62, 60], False),
        (0, [36, 38, 42, 38], True),
    ]:
        track = symusic.Track("t", program, drum)
        for i, pitch in enumerate(pitches):
            track.notes.append(symusic.Note(i * tpq, tpq, pitch, 90))
        score.tracks.append(track)
    score.dump_midi(str(path))


def test_iter_files_midi(tmp_path):
    _write_midi(tmp_path / "song.mid")
    (piece,) = iter_files([tmp_path])
    assert isinstance(piece, CorpusPiece)
    assert piece.id == f"{tmp_path.name}/song.mid"
    assert piece.collection == tmp_path.name
    assert piece.style == "user"
    assert piece.score.ticks_per_quarter == TPQ
    assert [(t.name, t.program) for t in piece.score.tracks] == [
        ("melody", 0),
        ("harmony1", 1),
        ("bass", 5),
    ]
    assert [n.pitch for n in piece.score.tracks[0].notes] == [72, 74, 76, 77]
    assert [n.time for n in piece.score.tracks[0].notes] == [0, TPQ, 2 * TPQ, 3 * TPQ]
    assert piece.meters == [(0, 3, 4)]
    assert piece.n_parts == 3
    assert piece.key_mode in ("major", "minor")


def test_broken_files_are_skipped_not_raised(tmp_path):
    (tmp_path / "a_broken.xml").write_text("<score-partwise><part id='P1'><measure")
    (tmp_path / "b_broken.mid").write_bytes(b"MThd not really")
    _write_midi(tmp_path / "c_good.mid")
    _write_midi(tmp_path / "d_same.mid")
    items = list(iter_files([tmp_path], style="mine"))
    assert [type(i) for i in items] == [SkippedPiece, SkippedPiece, CorpusPiece, SkippedPiece]
    assert items[0].reason and items[1].reason
    assert items[3].reason == f"duplicate of {tmp_path.name}/c_good.mid"
    assert items[2].style == "mine"
    with pytest.raises(ValueError):
        list(iter_files([tmp_path], style="no_underscores"))


def test_manifest_round_trip(tmp_path, chorale):
    _, piece = chorale
    manifest = Manifest(seed=3)
    manifest.add(piece, tokens=700)
    manifest.add(SkippedPiece("bach/x.mxl", "parse failed"))
    manifest.collections["bach"].tokens += 1
    path = tmp_path / "manifest.json"
    manifest.save(path)
    loaded = Manifest.load(path)
    assert loaded == manifest
    assert loaded.styles["chorale"].pieces == 1
    assert loaded.styles["chorale"].notes == piece.n_notes
    assert loaded.skipped == {"bach/x.mxl": "parse failed"}
    assert loaded.total.tokens == 700


def test_roles_constant():
    assert ROLES == ("melody", "harmony1", "harmony2", "harmony3", "harmony4", "bass")
