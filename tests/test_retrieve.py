"""The reference library: features, indexing (incremental, bad files), search, storage checks."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import symusic

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from composer.cli import main  # noqa: E402
from composer.errors import ComposerError  # noqa: E402
from composer.retrieve.features import (  # noqa: E402
    FEATURE_DIM,
    feature_distance,
    symbolic_features,
)
from composer.retrieve.index import index  # noqa: E402
from composer.retrieve.library import (  # noqa: E402
    DEFAULT_LIBRARY,
    LIBRARY_FILE,
    Library,
    load_piece,
)
from composer.retrieve.search import parse_query, reference_features, search  # noqa: E402

KETTLE = """X:1
T:The Kettle Reel
M:4/4
L:1/8
K:G
|:GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA:|
X:2
T:Lament for the Low Tide
M:3/4
L:1/4
K:Dm
D F A|d2 c|B A G|A3|F E D|E2 C|D3|]
"""


def _melody_score(pitches: list[int], tpq: int = 480, bass: bool = True) -> symusic.Score:
    score = symusic.Score(tpq)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    score.tempos.append(symusic.Tempo(0, qpm=90))
    top = symusic.Track(program=0)
    for i, p in enumerate(pitches):
        top.notes.append(symusic.Note(i * tpq // 2, tpq // 2, p, 80))
    score.tracks.append(top)
    if bass:
        low = symusic.Track(program=5)
        for i, p in enumerate(pitches[::4]):
            low.notes.append(symusic.Note(i * 2 * tpq, 2 * tpq, p - 24, 70))
        score.tracks.append(low)
    return score


def _write_folder(folder: Path) -> Path:
    """Three good files (MIDI, MusicXML, a two-tune ABC) and one corrupt MIDI file."""
    from music21 import key, metadata, meter, note, stream

    folder.mkdir(parents=True)
    scale = [60, 62, 64, 65, 67, 69, 71, 72] * 4
    _melody_score(scale).dump_midi(str(folder / "rising_scale.mid"))
    part = stream.Part()
    part.append(meter.TimeSignature("3/4"))
    part.append(key.Key("E-"))
    for p in ["E-4", "G4", "B-4", "E-5", "D5", "B-4", "C5", "A-4", "F4", "E-4", "G4", "B-4"] * 2:
        part.append(note.Note(p, quarterLength=1.0))
    sc = stream.Score([part])
    sc.metadata = metadata.Metadata(title="Waltz of the Lanterns")
    sc.write("musicxml", fp=str(folder / "waltz.musicxml"))
    (folder / "tunes.abc").write_text(KETTLE)
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage, not a MIDI file")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("retrieve")
    folder = _write_folder(root / "mine")
    calls: list[tuple] = []
    report = index([folder], root / "lib", progress=lambda *a: calls.append(a))
    return folder, root / "lib", (report, calls)


# --- features --------------------------------------------------------------------------------


def test_features_are_fixed_length_key_relative_and_tpq_free() -> None:
    score = _melody_score([60, 64, 67, 72, 71, 67, 65, 62] * 4)
    f = symbolic_features(score)
    assert f.shape == (FEATURE_DIM,) and f.dtype == np.float32
    assert f[0:12].sum() == pytest.approx(1.0)
    assert feature_distance(f, f) == 0.0
    # A transposition differs only in mean pitch (the pitch classes are key-relative).
    assert feature_distance(f, symbolic_features(score.shift_pitch(5))) < 0.02
    assert feature_distance(f, symbolic_features(score.resample(96, min_dur=1))) < 1e-6
    other = _melody_score([60, 61, 66, 70, 59, 63, 68, 62] * 4)
    d = feature_distance(f, symbolic_features(other))
    assert 0.05 < d <= 1.0
    assert d == pytest.approx(feature_distance(symbolic_features(other), f))
    assert not symbolic_features(symusic.Score(480)).any()  # no notes: all zeros


# --- indexing --------------------------------------------------------------------------------


def test_index_lists_the_corrupt_file_and_keeps_the_rest(built) -> None:
    folder, lib_dir, (report, calls) = built
    assert report.files == 4 and report.indexed == 4
    assert [Path(b[0]).name for b in report.bad] == ["broken.mid"]
    assert report.bad[0][1]  # with its reason
    assert report.pieces_added == report.pieces_total == 4  # MIDI, MusicXML, two ABC tunes
    assert calls[-1] == ("index", 4, 4)
    lib = Library.open(lib_dir)
    by_title = {p.title: p for p in lib.pieces}
    assert set(by_title) == {
        "rising_scale",
        "Waltz of the Lanterns",
        "The Kettle Reel",
        "Lament for the Low Tide",
    }
    lament = by_title["Lament for the Low Tide"]
    assert (lament.tonic, lament.mode, lament.meter) == (2, "minor", "3/4")
    assert lament.id == "mine/tunes.abc#2" and lament.tune == "2" and lament.rel == "mine/tunes.abc"
    assert lament.path == str(folder / "tunes.abc")
    assert by_title["rising_scale"].programs == (0, 5)
    assert "Lament for the Low Tide" in lament.description and "D minor" in lament.description
    assert np.allclose(np.linalg.norm(lib.embeddings, axis=1), 1.0, atol=0.02)
    again = load_piece(lament)  # what priming re-parses a reference with
    assert again.id == lament.id and again.title == "Lament for the Low Tide"


def test_reindex_skips_unchanged_files_and_picks_up_a_changed_one(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "mine")
    index([folder], tmp_path / "lib")
    again = index([folder], tmp_path / "lib")
    assert (again.unchanged, again.indexed, again.pieces_added) == (4, 0, 0)
    assert [Path(b[0]).name for b in again.bad] == ["broken.mid"]  # still listed
    (folder / "tunes.abc").write_text(KETTLE.replace("The Kettle Reel", "The Copper Kettle"))
    (folder / "waltz.musicxml").unlink()
    changed = index([folder], tmp_path / "lib")
    assert (changed.indexed, changed.unchanged, changed.removed_files) == (1, 2, 1)
    assert (changed.pieces_added, changed.pieces_removed, changed.pieces_total) == (2, 3, 3)
    titles = {p.title for p in Library.open(tmp_path / "lib").pieces}
    assert "The Copper Kettle" in titles and "The Kettle Reel" not in titles
    assert "Waltz of the Lanterns" not in titles


# --- search ----------------------------------------------------------------------------------


def test_search_ranks_the_matching_piece_first_with_its_score_parts(built) -> None:
    _, lib_dir, _ = built
    lib = Library.open(lib_dir)
    hits = search(lib, "the kettle reel in G major", k=3)
    assert hits[0].piece.title == "The Kettle Reel"
    top = hits[0]
    assert top.words > 0.5 and top.matched["key"] == 1.0
    assert top.score == pytest.approx(top.text + top.words + top.attributes)
    assert "words" in top.line() and "key 1.0" in top.line()
    # Attributes alone: a lament in D minor and 3/4.
    assert search(lib, "", key="D minor", meter="3/4", k=1)[0].piece.title.startswith("Lament")


def test_search_by_features_of_a_reference_file(built) -> None:
    folder, lib_dir, _ = built
    ref = reference_features(folder / "rising_scale.mid")
    hits = search(Library.open(lib_dir), "", features=ref, k=4)
    assert hits[0].piece.title == "rising_scale"
    assert hits[0].features == pytest.approx(1.0, abs=1e-3)  # stored as float16
    assert hits[1].features < hits[0].features


def test_parse_query_reads_stated_attributes() -> None:
    q = parse_query("a slow fiddle tune in F sharp minor, 6/8, four voices, about 32 bars")
    assert (q.key, q.meter, q.parts, q.bars, q.style) == ((6, "minor"), "6/8", 4, 32, "fiddle")
    assert q.tempo == 66.0  # the middle of "slow" (composer.music.words.TEMPO_WORDS)
    assert parse_query("an unaccompanied melody").parts == 1
    jig = parse_query("an Irish jig")  # a dance: its style, meter and speed, as compose reads it
    assert (jig.style, jig.meter) == ("fiddle", "6/8") and jig.tempo > 160


def test_cli_index_and_search(built, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder, _, _ = built
    assert main(["index", str(folder), "--library", str(tmp_path / "lib")]) == 0
    out = capsys.readouterr().out
    assert "skipped mine/broken.mid" in out and "build rate:" in out and "pieces/s" in out
    assert main(["search", "waltz of the lanterns", "--library", str(tmp_path / "lib")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("read from the query:") and "waltz" in lines[0]  # a waltz's meter
    assert "Waltz of the Lanterns" in lines[1] and "text " in lines[2]
    assert main(["search", "x", "--style", "bogus", "--library", str(tmp_path / "lib")]) == 1
    assert "unknown style 'bogus'" in capsys.readouterr().err


# --- storage ---------------------------------------------------------------------------------


def _rewrite_manifest(path: Path, **changes) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    head = json.loads(gzip.decompress(arrays["meta"].tobytes()))
    head["manifest"].update(changes)
    arrays["meta"] = np.frombuffer(gzip.compress(json.dumps(head).encode()), np.uint8)
    np.savez(path, **arrays)


def test_mismatched_or_corrupt_library_gives_one_clear_line(
    built, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder, lib_dir, _ = built
    other = tmp_path / "old"
    other.mkdir()
    (other / LIBRARY_FILE).write_bytes((lib_dir / LIBRARY_FILE).read_bytes())
    _rewrite_manifest(other / LIBRARY_FILE, feature_version=0)
    with pytest.raises(ComposerError, match="feature layout v0.*rebuild"):
        Library.open(other)
    assert main(["search", "reel", "--library", str(other)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "embedding model" in err

    (other / LIBRARY_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ComposerError, match="damaged or not a composer library"):
        Library.open(other)
    with pytest.raises(ComposerError, match="no library here"):
        Library.open(tmp_path / "nothing")
    # Indexing into a mismatched library refuses (and leaves it) unless asked to rebuild.
    (other / LIBRARY_FILE).write_bytes((lib_dir / LIBRARY_FILE).read_bytes())
    _rewrite_manifest(other / LIBRARY_FILE, embedding_model="some other model")
    before = (other / LIBRARY_FILE).read_bytes()
    with pytest.raises(ComposerError, match="some other model"):
        index([folder], other)
    assert (other / LIBRARY_FILE).read_bytes() == before
    assert index([folder], other, rebuild=True).pieces_total == 4


def test_shipped_library_opens_and_answers() -> None:
    if not (DEFAULT_LIBRARY / LIBRARY_FILE).exists():
        pytest.skip(f"no prebuilt library at {DEFAULT_LIBRARY} (composer index makes it)")
    size = (DEFAULT_LIBRARY / LIBRARY_FILE).stat().st_size
    assert size <= 15e6
    lib = Library.open(DEFAULT_LIBRARY)
    assert len(lib) > 1000
    hits = search(lib, "a chorale by Bach in G major", k=5)
    assert hits[0].piece.style == "chorale" and hits[0].piece.composer.endswith("Bach")
    assert hits[0].piece.source == "music21"
