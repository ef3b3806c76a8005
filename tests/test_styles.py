"""The style classifier and ``composer eval styles`` on a tiny corpus and the tiny decoder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import symusic

from composer.cli import main
from composer.errors import ComposerError
from composer.evaluate.styles import (
    STYLE_CLASSIFIER,
    StyleAgreement,
    StyleClassifier,
    corpus_agreement,
    eval_styles,
    excerpt_features,
    held_out_excerpts,
    opening_plan,
    wilson,
)
from composer.model.checkpoint import forget_checkpoints
from composer.music.scores import CorpusPiece
from composer.retrieve.features import FEATURE_DIM
from composer.tokens import ScoreTokenizer
from composer.train.adapter import AdapterTrainConfig, train_adapter
from composer.train.data import TokenCache, build_cache
from composer.train.trainer import TrainConfig

TPQ = 480


def piece(i: int, style: str) -> CorpusPiece:
    """folk: running quarters in 3/4; chorale: half-note chords in 4/4. 8 bars each."""
    rng = np.random.default_rng(i)
    s = symusic.Score(TPQ)
    folk = style == "folk"
    beats, step = (3, 1) if folk else (4, 2)
    s.time_signatures.append(symusic.TimeSignature(0, beats, 4))
    tracks = [symusic.Track(f"v{v}", 0, False) for v in range(1 if folk else 3)]
    for b in range(8):
        for beat in range(0, beats, step):
            t = (b * beats + beat) * TPQ
            root = 60 + int(rng.choice([0, 2, 4, 5, 7]))
            for v, track in enumerate(tracks):
                track.notes.append(symusic.Note(t, step * TPQ, root - 7 * v, 80))
    s.tracks.extend(tracks)
    return CorpusPiece(
        id=f"{style}/{i}", collection=style, style=style, title=str(i), score=s,
        key_tonic=0, key_mode="major", meters=[(0, beats, 4)], section_starts=[0], n_parts=3,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer.named("remi-roles-v1")


@pytest.fixture(scope="module")
def cache(tok, tmp_path_factory) -> TokenCache:
    items = [piece(i, s) for s in ("folk", "chorale") for i in range(40)]
    folder = tmp_path_factory.mktemp("style-cache") / "data"
    build_cache(items, tok, folder, seed=0)
    return TokenCache.load(folder, tok)


def fitted(tok, cache) -> StyleClassifier:
    """A two-style classifier fitted (least squares on one-hot targets) to the tiny corpus."""
    ex = held_out_excerpts(cache, "train", bars=4) + held_out_excerpts(cache, "val", bars=4)
    x = np.stack([excerpt_features(tok, ids) for _, _, ids in ex]).astype(np.float64)
    styles = ("folk", "chorale")
    y = np.array([[s == t for t in styles] for s, _, _ in ex], np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    w = np.linalg.lstsq(z, y * 8 - 4, rcond=None)[0]  # (F + 1, C)
    return StyleClassifier(styles, mean, scale, w[:-1].T, w[-1])


def test_features_ignore_the_style_token(tok, cache):
    p = cache.split("train")[0]
    ids = cache.ids(p)
    other = ids.copy()
    other[1] = tok.vocab["Style_medieval"]
    a, b = excerpt_features(tok, ids), excerpt_features(tok, other)
    assert a.shape == (FEATURE_DIM + 4,)
    np.testing.assert_array_equal(a, b)


def test_excerpts_and_plans(tok, cache):
    ex = held_out_excerpts(cache, "train", bars=4, per_piece=2, seed=1)
    again = held_out_excerpts(cache, "train", bars=4, per_piece=2, seed=1)  # seeded
    assert [(s, p, ids.tolist()) for s, p, ids in ex] == [
        (s, p, ids.tolist()) for s, p, ids in again
    ]
    for _style, _pid, ids in ex:
        assert ids[0] == tok.bos_id and list(ids[3:]).count(tok.bar_id) == 4
    folk = next(p for p in cache.pieces if p.style == "folk")
    meter, controls = opening_plan(tok, cache.ids(folk), 4)
    assert meter == (3, 4) and len(controls) == 4
    assert opening_plan(tok, cache.ids(folk), 40) is None  # the piece has 8 bars


def test_classifier_round_trip_and_errors(tok, cache, tmp_path):
    clf = fitted(tok, cache)
    ex = held_out_excerpts(cache, "test", bars=4)
    x = np.stack([excerpt_features(tok, ids) for _, _, ids in ex])
    assert np.mean([p == s for p, (s, _, _) in zip(clf.predict(x), ex, strict=True)]) > 0.9
    clf.save(tmp_path / "c.json")
    back = StyleClassifier.load(tmp_path / "c.json")
    np.testing.assert_allclose(back.probabilities(x), clf.probabilities(x))
    np.testing.assert_allclose(back.probabilities(x).sum(1), 1.0)
    (tmp_path / "bad.json").write_text(json.dumps({"styles": ["a"], "mean": [0.0]}))
    with pytest.raises(ComposerError, match="corrupt style classifier"):
        StyleClassifier.load(tmp_path / "bad.json")
    with pytest.raises(ComposerError, match="no style classifier"):
        StyleClassifier.load(tmp_path / "none.json")


def test_shipped_classifier_loads():
    clf = StyleClassifier.load(STYLE_CLASSIFIER)
    assert {"folk", "fiddle", "chorale", "renaissance"} <= set(clf.styles)
    assert clf.coef.shape == (len(clf.styles), FEATURE_DIM + 4)
    assert clf.info["per_style_test_recall"]


def test_corpus_agreement_counts_the_training_openings_heard_as_their_style(tok, cache):
    clf = fitted(tok, cache)
    for style in ("folk", "chorale"):
        assert corpus_agreement(clf, tok, cache, style, bars=4) == 1.0
    # A classifier with its answers swapped hears no opening as its own style.
    swapped = StyleClassifier(clf.styles, clf.mean, clf.scale, -clf.coef, -clf.intercept)
    assert corpus_agreement(swapped, tok, cache, "folk", bars=4) == 0.0
    # A style with no training piece that long has no figure.
    assert np.isnan(corpus_agreement(clf, tok, cache, "folk", bars=40))


def test_eval_styles_end_to_end(tok, cache, tiny_checkpoint, tmp_path, capsys):
    model = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoint, model)
    config = AdapterTrainConfig(
        train=TrainConfig(seq_len=128, batch_size=4, lr=1e-2, warmup_steps=1, epochs=0.01)
    )
    train_adapter("folk", model=model, cache=cache.folder, config=config)
    clf_path = tmp_path / "clf.json"
    fitted(tok, cache).save(clf_path)
    forget_checkpoints()
    report = eval_styles(
        model, cache=cache.folder, per_style=2, bars=2, candidates=1, classifier=clf_path,
        out=tmp_path / "out",
    )  # fmt: skip
    assert [r.style for r in report.rows] == ["folk"]  # chorale has no adapter: not evaluated
    row = report.rows[0]
    assert sum(row.heard_with.values()) == sum(row.heard_without.values()) == 2
    assert 0 <= row.with_adapter <= 1 and row.corpus == 1.0  # the tiny styles are unmistakable
    # The paired counts are the two shares' difference, piece by piece.
    gained = (row.only_with - row.only_without) / row.pieces
    assert row.with_adapter - row.without_adapter == pytest.approx(gained)
    assert 0.0 <= row.paired_p <= 1.0
    text = (tmp_path / "out" / "styles.txt").read_text()
    assert "folk" in text and "corpus" in text
    # The command: no adapter for any style the classifier knows is one clear line.
    code = main(["eval", "styles", "--model", str(tiny_checkpoint), "--cache", str(cache.folder)])
    assert code == 1 and "no adapter" in capsys.readouterr().err


def test_wilson_interval_and_paired_sign_test():
    lo, hi = wilson(16, 20)
    assert lo == pytest.approx(0.584, abs=1e-3) and hi == pytest.approx(0.919, abs=1e-3)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    # 10 pieces gained and none lost: a sign test gives 2 / 2**10.
    row = StyleAgreement("folk", "folk", 20, 0.9, 0.4, {}, {}, 1.0, only_with=10, only_without=0)
    assert row.paired_p == pytest.approx(2 / 2**10)
    assert row.interval == wilson(18, 20)
    tie = StyleAgreement("folk", "folk", 20, 1.0, 1.0, {}, {}, 1.0)
    assert tie.paired_p == 1.0
