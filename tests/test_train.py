"""Training pipeline on a tiny synthetic corpus: cache, windows, n-gram, train, resume, load."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import symusic
from conftest import TINY_MODEL

from composer.errors import ComposerError
from composer.model import ModelSpec, load_checkpoint
from composer.music.corpus import SkippedPiece
from composer.music.scores import CorpusPiece
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER
from composer.train.data import (
    TokenCache,
    WindowSampler,
    build_cache,
    eval_windows,
    style_textures,
)
from composer.train.ngram import KneserNey
from composer.train.trainer import TrainConfig, train

TPQ = 480


def piece(i: int) -> CorpusPiece:
    """A two-voice piece: a scale melody over a bass, 8 bars of 3/4, in one of two keys."""
    rng = np.random.default_rng(i)
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, 3, 4))
    tonic = 60 + (i % 2) * 2
    mel, bass = symusic.Track("melody", 0, False), symusic.Track("bass", 5, False)
    for b in range(8):
        for beat in range(3):
            t = (b * 3 + beat) * TPQ
            mel.notes.append(symusic.Note(t, TPQ, tonic + int(rng.choice([0, 2, 4, 5, 7])), 80))
        bass.notes.append(symusic.Note(b * 3 * TPQ, 3 * TPQ, tonic - 24, 80))
    s.tracks.extend([mel, bass])
    return CorpusPiece(
        id=f"synthetic/{i}",
        collection="synthetic",
        style="folk",
        title=str(i),
        score=s,
        key_tonic=tonic % 12,
        key_mode="major",
        meters=[(0, 3, 4)],
        section_starts=[0, 4 * 3 * TPQ],
        n_parts=2,
    )


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer()


@pytest.fixture(scope="module")
def cache(tok, tmp_path_factory) -> TokenCache:
    items = [piece(i) for i in range(60)] + [SkippedPiece("synthetic/bad", "broken on purpose")]
    folder = tmp_path_factory.mktemp("cache")
    build_cache(items, tok, folder, seed=0)
    return TokenCache.load(folder, tok)


def test_cache_splits_and_manifest(cache):
    m = cache.manifest
    assert m.total.pieces == 60 and m.skipped == {"synthetic/bad": "broken on purpose"}
    splits = {p.split for p in cache.pieces}
    assert splits <= {"train", "val", "test"} and "train" in splits
    assert set(m.splits) == splits
    assert sum(c.pieces for c in m.splits.values()) == 60
    assert m.styles["folk"].pieces == 60
    assert m.total.tokens == len(cache.tokens) == sum(p.length for p in cache.pieces)


def test_windows_start_at_bars_with_header(cache, tok):
    sampler = WindowSampler(cache, tok, length=64, seed=0)
    for _ in range(20):
        w = sampler.window()
        assert len(w) <= 64
        assert w[0] == tok.bos_id and tok.tokens[w[1]] == "Style_folk"
        assert tok.tokens[w[2]].startswith("Key_")
        assert w[HEADER] == tok.bar_id
    ids, labels = next(sampler.batches(3))
    assert ids.shape == labels.shape == (3, 64)


def test_eval_windows_cover_each_piece_once(cache, tok):
    windows = eval_windows(cache, "train", 100)
    body = sum(len(w) - HEADER for w in windows)
    assert body == sum(p.length - HEADER for p in cache.split("train"))
    assert all(len(w) <= 100 for w in windows)


def test_style_textures_are_the_roles_most_pieces_write(tok, tmp_path):
    two = [piece(i) for i in range(12)]
    one = []
    for i in range(12, 24):  # melody alone, as a "fiddle" tune; one of them with a bass
        p = piece(i)
        if i != 12:
            p.score.tracks.pop()
        one.append(dataclasses.replace(p, style="fiddle", n_parts=2 if i == 12 else 1))
    cache = build_cache(two + one, tok, tmp_path, seed=0)
    assert style_textures(cache, tok, split="train") == {"fiddle": [0], "folk": [0, 5]}


def test_ngram_beats_unigram_and_normalises(cache, tok):
    seqs = [cache.ids(p) for p in cache.split("train")]
    held = eval_windows(cache, "train", 200)[:5]
    uni, five = KneserNey(1, len(tok)).fit(seqs), KneserNey(5, len(tok)).fit(seqs)
    assert five.nll(held) < uni.nll(held)
    h = seqs[0][:20]
    total = sum(np.exp(five.log_probs(np.append(h, w))[-1]) for w in range(len(tok)))
    assert total == pytest.approx(1.0, abs=1e-6)


def tiny_config(**kw) -> TrainConfig:
    spec = ModelSpec(**TINY_MODEL)
    base = dict(
        model=spec,
        seq_len=96,
        batch_size=4,
        epochs=0.5,
        warmup_steps=2,
        lr=3e-3,
        checkpoint_every_steps=2,
    )
    return TrainConfig(**{**base, **kw})


def test_train_saves_a_loadable_checkpoint_and_resumes(cache, tok, tmp_path):
    out = tmp_path / "model"
    res = train(cache, tok, tiny_config(), out)
    assert res.steps > 0 and np.isfinite(res.val_loss)
    assert res.history[-1]["val_loss"] == pytest.approx(res.val_loss)
    ckpt = load_checkpoint(out, tokenizer=tok)
    assert ckpt.spec.tokenizer_hash == tok.vocab_hash
    assert ckpt.info["steps"] == res.steps
    assert ckpt.info["style_roles"] == {"folk": [0, 5]}  # what the pieces write, recorded
    assert (out / "model.safetensors").stat().st_size < 2_000_000
    # Resuming with more epochs continues from the saved step instead of starting over.
    more = train(cache, tok, tiny_config(epochs=1.0), out, resume=True)
    assert more.steps > res.steps
    assert len(more.history) > len(res.history)


def test_a_run_that_fails_to_write_its_result_resumes_to_write_it(cache, tok, tmp_path):
    out = tmp_path / "m4"

    def disk_full(model, info):
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        train(cache, tok, tiny_config(epochs=0.2), out, save=disk_full)
    assert not out.exists()
    # The training state was saved before the result: resuming writes it without retraining.
    res = train(cache, tok, tiny_config(epochs=0.2), out, resume=True)
    assert load_checkpoint(out, tokenizer=tok).info["steps"] == res.steps > 0


def test_load_errors_are_one_line(cache, tok, tmp_path):
    out = tmp_path / "m"
    train(cache, tok, tiny_config(epochs=0.1), out)
    spec = json.loads((out / "composer.json").read_text())
    spec["spec"]["tokenizer_hash"] = "ffff"
    (out / "composer.json").write_text(json.dumps(spec))
    with pytest.raises(ComposerError, match="tokenizer mismatch"):
        load_checkpoint(out, tokenizer=tok)
    (out / "composer.json").write_text("{")
    with pytest.raises(ComposerError, match="not readable JSON"):
        load_checkpoint(out, tokenizer=tok)
    with pytest.raises(ComposerError, match="not a composer checkpoint"):
        load_checkpoint(tmp_path, tokenizer=tok)


def test_a_model_is_evaluated_only_on_the_split_it_was_trained_with(cache, tok, tmp_path):
    out = tmp_path / "m3"
    train(cache, tok, tiny_config(epochs=0.1), out)
    info = load_checkpoint(out, tokenizer=tok).info
    assert info["data"]["held_out"] == cache.held_out_digest
    assert info["data"]["min_held_out"] == cache.manifest.min_held_out == 10
    cache.check_trained_with(info, out)  # the split it was trained on: no complaint
    # The same pieces split by another seed hold out other pieces: refused, in one line.
    items = [piece(i) for i in range(60)]
    build_cache(items, tok, tmp_path / "seed1", seed=1)
    with pytest.raises(ComposerError, match="holds out other pieces than m3 was trained with"):
        TokenCache.load(tmp_path / "seed1", tok).check_trained_with(info, out)
    # A checkpoint from before the digest was trained on the per-piece hash split alone.
    before = {"data": {"seed": 0, "pieces": 60}}
    with pytest.raises(ComposerError, match="holds out other pieces"):
        cache.check_trained_with(before, out)
    build_cache(items, tok, tmp_path / "hash", seed=0, min_held_out=0)
    TokenCache.load(tmp_path / "hash", tok).check_trained_with(before, out)


def test_corrupt_weights(cache, tok, tmp_path):
    out = tmp_path / "m2"
    train(cache, tok, tiny_config(epochs=0.1), out)
    (out / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(ComposerError, match="does not match the digest"):
        load_checkpoint(out, tokenizer=tok)


def test_meters_outside_the_vocabulary_are_rewritten_or_skipped(tok, tmp_path):
    eight = piece(100)
    eight.score.time_signatures[0] = symusic.TimeSignature(0, 12, 16)  # 3/4 bars, as 12/16
    odd = piece(101)
    odd.id = "synthetic/odd"
    odd.score.time_signatures[0] = symusic.TimeSignature(0, 11, 16)
    cache = build_cache([piece(0), eight, odd], tok, tmp_path, seed=0)
    assert cache.manifest.meters_rewritten == {"12/16->6/8": 1}
    assert "meter 11/16 is not in the vocabulary" in cache.manifest.skipped["synthetic/odd"]
    assert cache.manifest.total.pieces == 2
    rewritten = cache.ids(cache.pieces[1])
    assert {tok.tokens[i] for i in rewritten if tok.tokens[i].startswith("TimeSig")} == {
        "TimeSig_6/8"
    }
    with pytest.raises(ValueError, match="valid|3/4"):
        tok.fit_meters(odd.score)


def test_train_command_on_a_users_midi_folder(tmp_path, capsys):
    from composer.cli import main

    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(12):
        piece(200 + i).score.dump_midi(str(songs / f"song{i:02d}.mid"))
    (songs / "broken.mid").write_bytes(b"MThd not really")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model": TINY_MODEL, "seq_len": 96, "batch_size": 2,
                                  "epochs": 1.0, "warmup_steps": 1}))  # fmt: skip
    out = tmp_path / "mine"
    args = ["train", "--data", str(songs), "--config", str(config), "--style", "folk",
            "--cache", str(tmp_path / "cache" / "x"), "--out", str(out),
            "--workers", "1"]  # fmt: skip
    assert main(args) == 0
    assert "validation loss" in capsys.readouterr().out
    ckpt = load_checkpoint(out, tokenizer=ScoreTokenizer.named("remi-roles-v1"))
    assert ckpt.info["data"]["pieces"] == 12 and ckpt.info["data"]["skipped"] == 1
    (built,) = (tmp_path / "cache").iterdir()
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["styles"]["folk"]["pieces"] == 12
    assert "broken.mid" in next(iter(manifest["skipped"]))
    card = (out / "README.md").read_text()
    assert "12 pieces" in card and "folk: 12" in card and "composer train --data" in card
    assert "| step | epoch |" in card
    assert main(["train", "--data", str(tmp_path / "nope")]) == 1
    assert main(["train", "--data", str(songs), "--style", "jazz"]) == 1
    assert "valid styles" in capsys.readouterr().err
