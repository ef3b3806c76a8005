"""composer eval: the music metrics on known streams, and the generation and loss reports on a
tiny model trained here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_train import piece, tiny_config

from composer.evaluate.metrics import measure, notes_of
from composer.tokens import ScoreTokenizer
from composer.train.data import TokenCache, build_cache
from composer.train.trainer import train


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer.named("remi-roles-v1")


def stream(tok: ScoreTokenizer, bars: list[list[tuple[int, int]]], meter: str = "4/4") -> list:
    """Bars of (position, pitch) quarter notes for one voice."""
    ids = []
    for notes in bars:
        ids += [tok.bar_id, tok.vocab[f"TimeSig_{meter}"]]
        for pos, pitch in notes:
            ids += [tok.vocab[t] for t in (f"Position_{pos}", "Program_0", f"Pitch_{pitch}",
                                           "Velocity_95", "Duration_1.0.12")]  # fmt: skip
    return ids


def test_metrics_on_known_streams(tok):
    scale = [60, 62, 64, 65, 67, 69, 71]
    ids = stream(tok, [[(0, p)] for p in scale])  # one C major note per 4/4 bar
    m = measure(notes_of(tok, ids))
    assert m["pitch_class_entropy"] == pytest.approx(math.log2(7))
    assert m["scale_consistency"] == 1.0
    assert m["groove_consistency"] == 1.0  # every bar attacks on beat 1 only
    assert m["empty_beat_rate"] == pytest.approx(0.75)
    busy = stream(tok, [[(0, 60), (12, 61), (24, 62), (36, 66)], [(6, 60)]])
    m = measure(notes_of(tok, busy))
    assert m["empty_beat_rate"] == pytest.approx(3 / 8)
    # G major holds all but C#; no scale holds C, C# and D.
    assert m["scale_consistency"] == pytest.approx(4 / 5)
    assert m["groove_consistency"] == pytest.approx(1 - 5 / 48)
    n = notes_of(tok, stream(tok, [[(0, 60)], [(0, 60)]], meter="3/4"))
    assert list(n.bar_starts) == [0, 36] and n.meters == ((3, 4), (3, 4))


@pytest.fixture(scope="module")
def trained(tok, tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    # Enough pieces for the test split to hold a few of them.
    build_cache([piece(i) for i in range(120)], tok, folder / "cache", seed=0)
    cache = TokenCache.load(folder / "cache", tok)
    train(cache, tok, tiny_config(epochs=0.3), folder / "model")
    return folder


def test_eval_generation_report(trained, tmp_path):
    from composer.evaluate.generation import eval_generation

    report = eval_generation(
        trained / "model", trained / "cache", pieces=3, bars=4, out=tmp_path / "report"
    )
    assert len(report.pieces) == 3
    # The grammar's promises hold even for a barely trained model.
    assert report.rate("decoded") == 1.0 and report.rate("bars_exact") == 1.0
    assert all(p.bars == 4 and p.meter == "3/4" for p in report.pieces)
    assert {p.key_found != "" for p in report.pieces} == {True}
    (row,) = report.styles
    assert row.style == "folk" and row.pieces == 3
    assert 0 < row.reference["scale_consistency"] <= 1
    # The corpus mean covers every held-out opening, the drawn ones among them.
    assert row.held_out >= len({p.reference for p in report.pieces})
    assert set(row.corpus) == set(row.reference)
    table = report.table()
    assert "music21 key" in table and "folk" in table
    for name in ("generation.json", "generation.txt", "generation.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert len(list((tmp_path / "report" / "midi").glob("*.mid"))) == 3


def test_held_out_plans_give_every_style_an_equal_share(tok, tmp_path):
    import dataclasses
    from collections import Counter

    from composer.evaluate.generation import held_out_openings, plans_from_held_out

    pieces = [piece(i) for i in range(120)]
    pieces += [dataclasses.replace(piece(i), id=f"fiddle/{i}", style="fiddle") for i in range(40)]
    cache = build_cache(pieces, tok, tmp_path, seed=0)
    held = Counter(p.style for p in cache.split("test"))
    assert held["folk"] > held["fiddle"] >= 1
    openings = held_out_openings(cache, tok, bars=4)
    assert {s: len(o) for s, o in openings.items()} == held
    plans = plans_from_held_out(openings, 20, seed=0)
    assert Counter(o.style for o, _ in plans) == {"folk": 10, "fiddle": 10}
    assert all(o.style == req.style and o.meter == req.meter for o, req in plans)
    # The few fiddle pieces come back in other keys and seeds.
    fiddle = [req for o, req in plans if o.style == "fiddle"]
    assert len({(r.key, r.seed) for r in fiddle}) == 10


def test_eval_loss_scores_every_row_on_the_same_windows(trained):
    from composer.evaluate.loss import eval_loss

    report = eval_loss(trained / "model", trained / "cache", split="test", orders=(3, 5))
    assert [r.name.split(",")[0] for r in report.rows] == [
        "decoder (model)",
        "Kneser-Ney 3-gram",
        "Kneser-Ney 5-gram",
        "Kneser-Ney 3-gram",
        "Kneser-Ney 5-gram",
    ]
    assert all(np.isfinite(r.nll) and r.nll > 0 for r in report.rows)
    assert report.tokens > 0
    assert "n-gram" in report.table()


def test_eval_priming_pairs_each_reference_with_both_outputs(trained, tmp_path):
    import json

    from composer.evaluate.priming import eval_priming

    report = eval_priming(
        trained / "model", trained / "cache", pieces=2, bars=4, primer_bars=2, midi_dir=tmp_path
    )
    assert len(report.rows) == 2
    assert all(0 <= r.primed <= 1 and 0 <= r.unprimed <= 1 for r in report.rows)
    assert all(r.style == "folk" and r.meter == "3/4" for r in report.rows)
    refs = json.loads((tmp_path / "references.json").read_text())
    assert sorted(refs) == [
        "000-folk-primed.mid", "000-folk-unprimed.mid", "001-folk-primed.mid",
        "001-folk-unprimed.mid",
    ]  # fmt: skip
    assert set(refs.values()) == {r.reference for r in report.rows}
    assert "primed closer" in report.table()
