"""composer eval copies: runs of identical bars against a reference and a training token cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import symusic

from composer.cli import main
from composer.errors import ComposerError
from composer.evaluate.copies import BarIndex, bar_table, eval_copies, midi_ids, single_table
from composer.model.export import write_midi
from composer.music.corpus import split_of
from composer.music.scores import CorpusPiece
from composer.tokens import ScoreTokenizer, TokenizerSpec
from composer.train.data import build_cache

TPQ = 480
BAR = 4 * TPQ


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer.named(TokenizerSpec().name)


def random_bars(rng: np.random.Generator, n: int) -> list[list[tuple[int, int, int]]]:
    """``n`` bars of 4/4, each 3-7 notes (onset in the bar, pitch, duration) on a 16th grid.

    Pitches differ within a bar and notes end by the bar line: MIDI cannot hold two
    overlapping notes of one pitch in a track, so those would not survive a file."""
    bars = []
    for _ in range(n):
        k = int(rng.integers(3, 8))
        onsets = np.sort(rng.choice(16, size=k, replace=False)) * (TPQ // 4)
        pitches = rng.choice(np.arange(52, 84), size=k, replace=False)
        durs = rng.choice([120, 240, 480], size=k)
        bars.append(
            [
                (int(t), int(p), int(min(d, BAR - t)))
                for t, p, d in zip(onsets, pitches, durs, strict=True)
            ]
        )
    return bars


def score_of(bars: list[list[tuple[int, int, int]]], shift: int = 0) -> symusic.Score:
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    track = symusic.Track("melody", 0, False)
    for b, notes in enumerate(bars):
        for t, p, d in notes:
            track.notes.append(symusic.Note(b * BAR + t, d, p + shift, 80))
    score.tracks.append(track)
    return score


def write(score: symusic.Score, path) -> None:
    score.dump_midi(str(path))


def piece(pid: str, bars) -> CorpusPiece:
    return CorpusPiece(pid, "synthetic", "folk", pid, score_of(bars), 0, "major",
                       [(0, 4, 4)], [0], 1)  # fmt: skip


def train_ids(n: int) -> list[str]:
    """``n`` piece ids that the split hash puts in the training split."""
    out, i = [], 0
    while len(out) < n:
        if split_of(f"synthetic/t{i}") == "train":
            out.append(f"synthetic/t{i}")
        i += 1
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tok):
    """A token cache of 5 random training pieces of 12 bars, and their bars."""
    rng = np.random.default_rng(7)
    ids = train_ids(5)
    bars = {pid: random_bars(rng, 12) for pid in ids}
    folder = tmp_path_factory.mktemp("cache")
    build_cache([piece(pid, b) for pid, b in bars.items()], tok, folder)
    return folder, bars


def test_planted_copy_of_a_training_piece_is_found(tmp_path, tok, corpus):
    folder, bars = corpus
    source = list(bars)[2]
    rng = np.random.default_rng(11)
    mine = random_bars(rng, 8)
    mine[3:6] = bars[source][5:8]  # a 3-bar copy of bars 6-8, then transposed with the rest
    write(score_of(mine, shift=5), tmp_path / "copy.mid")
    write(score_of(random_bars(rng, 8)), tmp_path / "fresh.mid")
    report = eval_copies([tmp_path], cache=folder, tokenizer=tok)
    by_name = {p.name: p for p in report.pieces}
    run = by_name["copy.mid"].vs_training
    assert (run.length, run.source, run.bar, run.source_bar, run.shift) == (3, source, 3, 5, 5)
    assert not by_name["copy.mid"].ok
    assert by_name["fresh.mid"].vs_training is None and by_name["fresh.mid"].longest == 0
    assert by_name["fresh.mid"].ok and not report.ok
    assert "COPY" in report.table() and "FAIL" in report.table()


def test_copy_of_the_reference_and_references_json(tmp_path, tok, corpus):
    folder, _ = corpus
    rng = np.random.default_rng(3)
    ref_bars = random_bars(rng, 10)
    write(score_of(ref_bars), tmp_path / "ref.mid")
    out = tmp_path / "gen"
    out.mkdir()
    mine = random_bars(rng, 8)
    mine[0:2] = ref_bars[4:6]  # two bars: within the rule
    write(score_of(mine, shift=-3), out / "two.mid")
    mine[2] = ref_bars[6]  # three
    write(score_of(mine, shift=-3), out / "three.mid")
    report = eval_copies([out], reference=tmp_path / "ref.mid", cache=folder, tokenizer=tok)
    runs = {p.name: p.vs_reference for p in report.pieces}
    assert (runs["two.mid"].length, runs["two.mid"].shift) == (2, -3)
    assert (runs["three.mid"].length, runs["three.mid"].source_bar) == (3, 4)
    assert [p.ok for p in report.pieces] == [False, True]  # three.mid, two.mid (sorted)

    # The same pairing from a references.json naming a piece of the token cache.
    source = list(corpus[1])[0]
    copy = random_bars(rng, 6)
    copy[1:4] = corpus[1][source][0:3]
    write(score_of(copy), out / "cached.mid")
    (out / "references.json").write_text(json.dumps({"cached.mid": source}))
    report = eval_copies([out / "cached.mid"], cache=folder, tokenizer=tok)
    assert report.pieces[0].reference == source
    assert report.pieces[0].vs_reference.length == 3


def test_runs_do_not_cross_pieces_and_rests_never_match(tok):
    rng = np.random.default_rng(5)
    a, b = random_bars(rng, 4), random_bars(rng, 4)
    # Two source pieces: the end of one and the start of the other are not one run.
    ids_a = tok.encode(score_of(a), "folk", (0, "major"))
    ids_b = tok.encode(score_of(b), "folk", (0, "major"))
    table = bar_table(tok, np.array(ids_a + ids_b), np.array([0, len(ids_a)]), ["a", "b"])
    query = single_table(tok, tok.encode(score_of(a[2:] + b[:2]), "folk", (0, "major")), "q")
    run = BarIndex(table).longest_run(query)
    assert run.length == 2
    # Bars of rest on both sides are not a copy.
    rests = [[], [], [], [(0, 60, 480)]]
    q = single_table(tok, tok.encode(score_of(rests), "folk", (0, "major")), "q")
    t = single_table(tok, tok.encode(score_of(rests[:3] + b[:1]), "folk", (0, "major")), "t")
    assert BarIndex(t).longest_run(q) is None


def test_midi_round_trip_keeps_bars(tmp_path, tok):
    rng = np.random.default_rng(9)
    ids = tok.encode(score_of(random_bars(rng, 6)), "folk", (0, "major"))
    write_midi(tok, ids, tmp_path / "x.mid", tempo=90.0, key=(0, "major"))
    a, b = single_table(tok, ids, "a"), single_table(tok, midi_ids(tok, tmp_path / "x.mid"), "b")
    assert np.array_equal(a.hashes, b.hashes) and np.all(a.hashes != 0)


def test_cli_exit_code_and_output(tmp_path, tok, corpus, capsys):
    folder, bars = corpus
    source = list(bars)[0]
    write(score_of(bars[source][2:6]), tmp_path / "copy.mid")
    report = tmp_path / "copies.txt"
    code = main(["eval", "copies", str(tmp_path / "copy.mid"), "--cache", str(folder),
                 "-o", str(report)])  # fmt: skip
    assert code == 1
    assert "4 (" + source in report.read_text()
    assert main(["eval", "copies", str(tmp_path / "missing"), "--cache", str(folder)]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_unreadable_midi_is_one_line_error(tmp_path, tok):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi")
    with pytest.raises(ComposerError, match="bad.mid"):
        midi_ids(tok, bad)
