"""Infilling: the layout, the training examples, the adapter's training and its evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import symusic
from test_train import piece

from composer.model.infill import MAX_AFTER, MAX_BEFORE, context, whole_bars
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER
from composer.train.data import TokenCache, build_cache
from composer.train.infill import InfillTrainConfig, bar_edges, batches, examples, span_nll
from composer.train.trainer import TrainConfig

BAR = 7  # a stand-in bar token for the layout's own tests


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer()


@pytest.fixture(scope="module")
def cache(tok, tmp_path_factory) -> TokenCache:
    folder = tmp_path_factory.mktemp("infill-cache")
    build_cache([piece(i) for i in range(40)], tok, folder, seed=0)
    return TokenCache.load(folder, tok)


def test_whole_bars_are_cut_from_the_near_side():
    ids = [BAR, 1, 1, BAR, 2, BAR, 3, 3, 3]  # bars of 3, 2 and 4 tokens
    assert whole_bars(ids, BAR, 5, keep_start=True) == [BAR, 1, 1, BAR, 2]
    assert whole_bars(ids, BAR, 4, keep_start=True) == [BAR, 1, 1]
    assert whole_bars(ids, BAR, 6, keep_start=False) == [BAR, 2, BAR, 3, 3, 3]
    assert whole_bars(ids, BAR, 3, keep_start=False) == []
    assert whole_bars([], BAR, 10, keep_start=True) == []


def test_context_is_after_then_eos_then_before():
    before, after = [BAR, 1, BAR, 2], [BAR, 3, BAR, 4]
    assert context(before, after, BAR, 0) == [BAR, 3, BAR, 4, 0, BAR, 1, BAR, 2]
    long = [BAR] + [5] * 400
    assert context(long, long, BAR, 0) == [0]  # a bar over budget is left out whole
    assert MAX_AFTER + MAX_BEFORE + 1 < 1024 // 2 - HEADER  # the decoder keeps a primer this long


def test_examples_ask_for_exact_bars_of_the_piece(cache, tok):
    by_id = {p.id: p for p in cache.pieces}
    exs = examples(cache, tok, "train", 60, 512, seed=3)
    assert {e.bars for e in exs} > {1, 4}
    assert any(e.bar == 0 for e in exs) and any(not e.after for e in exs)
    for e in exs:
        p = by_id[e.piece]
        ids = cache.ids(p).tolist()
        edges = bar_edges(p, np.asarray(ids), tok.eos_id)
        # The span is exactly its bars, with EOS where it ends the piece.
        span = ids[edges[e.bar] : edges[e.bar + e.bars]]
        ends = e.bar + e.bars == len(p.bars)
        assert e.span == span + ([tok.eos_id] if ends else [])
        assert e.span.count(tok.bar_id) == e.bars
        # The bars around it are the ones next to it, whole.
        assert ids[edges[e.bar] - len(e.before) : edges[e.bar]] == e.before
        assert ids[edges[e.bar + e.bars] : edges[e.bar + e.bars] + len(e.after)] == e.after
        for side in (e.before, e.after):
            assert not side or side[0] == tok.bar_id
        row, start = e.infill(tok.eos_id)
        assert row.tolist() == ids[:HEADER] + e.after + [tok.eos_id] + e.before + e.span
        assert row[start:].tolist() == e.span
        cont, c_start = e.continuation()
        assert cont[c_start:].tolist() == e.span and cont[:HEADER].tolist() == ids[:HEADER]


def test_examples_inside_have_bars_on_both_sides(cache, tok):
    for e in examples(cache, tok, "train", 20, 512, seed=1, span_bars=(4,), inside=True):
        assert e.bars == 4 and e.before and e.after


def test_batches_label_the_span_alone(cache, tok):
    ids, labels = next(batches(cache, tok, 256, 4, seed=0))
    assert ids.shape == labels.shape == (4, 256)
    for row, lab in zip(ids.tolist(), labels.tolist(), strict=True):
        scored = [i for i, x in enumerate(lab) if x != -100]
        assert scored and scored == list(range(scored[0], scored[-1] + 1))
        assert [row[i] for i in scored] == [lab[i] for i in scored]
        assert tok.eos_id in row[: scored[0]]  # the context's EOS comes before the span
        assert row[scored[0]] == tok.bar_id


def test_span_nll_scores_from_the_start_index_only(tiny_checkpoint):
    import torch

    from composer.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    row = np.arange(3, 40)
    with torch.no_grad():
        logp = torch.log_softmax(ckpt.model(input_ids=torch.as_tensor(row)[None]).logits[0], -1)
    want = -float(np.mean([logp[t - 1, row[t]] for t in range(20, len(row))]))
    assert span_nll(ckpt.model, [(row, 20)], ckpt.tokenizer.pad_id) == pytest.approx(want, 1e-4)


def test_train_and_evaluate_an_infill_adapter(cache, tok, tiny_checkpoint, tmp_path):
    """A tiny decoder's infill adapter trains, records its losses, merges and is evaluated."""
    import shutil

    from composer.evaluate.infilling import eval_infill
    from composer.model.adapters import adapter_path, merge_adapter
    from composer.model.checkpoint import load_checkpoint
    from composer.train.infill import train_infill

    model = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoint, model)
    config = InfillTrainConfig(
        train=TrainConfig(seq_len=256, batch_size=2, lr=2e-3, warmup_steps=2, epochs=0.2,
                          eval_every_epochs=0.1, checkpoint_every_steps=10**9),
        val_examples=8,
    )  # fmt: skip
    res = train_infill(model=model, cache=cache.folder, config=config)
    meta = json.loads((adapter_path(model, "infill") / "adapter.json").read_text())
    assert res.steps > 0 and meta["info"]["val_spans"] == 8
    assert meta["info"]["base_val_loss"] == pytest.approx(res.base_val_loss, abs=1e-4)
    assert merge_adapter(load_checkpoint(model), adapter_path(model, "infill")).model is not None
    with pytest.raises(Exception, match="already exists"):
        train_infill(model=model, cache=cache.folder, config=config)

    report = eval_infill(model, cache.folder, split="test", spans=6, seam_spans=2)
    assert [name for name, _ in report.loss][:3] == [
        "infill adapter, bars after and before", "infill adapter, bars after withheld",
        "base decoder, continuing from the bars before"]  # fmt: skip
    assert report.loss[3][0].startswith("Kneser-Ney") and all(n > 0 for _, n in report.loss)
    assert set(report.seams) == {
        "corpus",
        "infill, 1st",
        "infill, edit",
        "continuation, 1st",
        "continuation, edit",
    }
    corpus = report.seams["corpus"]
    assert corpus.spans == 2 and 0 <= corpus.in_key <= 1 and corpus.gap_in >= 0
    assert "infilling's loss is" in report.table() and "within 15%" in report.table()


def test_seam_figures_measure_the_notes_across_each_bar_line(tok):
    """A melody C D E F | G E C G | A B: 2 semitones into and out of the middle bar, a
    quarter-note gap across each seam, the middle bar in C major."""
    from composer.evaluate.infilling import _seams
    from composer.train.infill import Example

    s = symusic.Score(480)
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    mel = symusic.Track("melody", 0, False)
    for k, p in enumerate([60, 62, 64, 65, 67, 64, 60, 67, 69, 71]):
        mel.notes.append(symusic.Note(k * 480, 480, p, 80))
    s.tracks.append(mel)
    ids = tok.encode(s, "folk", (0, "major"))
    edges = [i for i, t in enumerate(ids) if t == tok.bar_id] + [len(ids) - 1]
    ex = Example(ids[:HEADER], ids[edges[0] : edges[1]], ids[edges[2] : edges[3]],
                 ids[edges[1] : edges[2]], "x", 1, 1)  # fmt: skip
    got = _seams(tok, [ex], [ex.span])
    assert (got.into, got.out_of, got.gap_in, got.gap_out) == (2, 2, 1.0, 1.0)
    assert got.in_key == 1.0 and got.spans == 1


def test_the_edit_prefers_spans_whose_melody_connects_then_in_key(tok):
    from composer.model.infill import melody_exit, preference
    from composer.types import Candidate

    def bar(*notes):  # (role, pitch) attacked on successive beats of a 4/4 bar
        out = [tok.bar_id, tok.vocab["TimeSig_4/4"]]
        for k, (role, pitch) in enumerate(notes):
            out += [tok.vocab[f"Position_{k * tok.steps_per_beat}"], tok.vocab[f"Program_{role}"],
                    tok.vocab[f"Pitch_{pitch}"], tok.vocab["Velocity_95"],
                    tok.vocab["Duration_1.0.12"]]  # fmt: skip
        return out

    after = bar((5, 36), (0, 67))  # the bass first: the melody's next note is G
    near, far = bar((0, 64), (0, 65), (5, 40)), bar((0, 64), (0, 77))
    assert melody_exit(tok, near, after) == 2 and melody_exit(tok, far, after) == 10
    assert melody_exit(tok, bar((5, 40)), after) is None  # no melody in the span
    assert melody_exit(tok, far, []) is None

    def cand(ids, adherence=1.0):
        return Candidate(ids, -1.0, adherence, {})

    # A melody that steps into the bars after comes first; then the one in the key asked for.
    c_major = bar((0, 60), (0, 64), (0, 67), (0, 65))  # C E G F: heard in C, connected (2)
    f_sharp = bar((0, 66), (0, 61), (0, 70), (0, 65))  # F# C# A# E#: not C, connected (2)
    ranked = sorted(
        [cand(far), cand(f_sharp), cand(c_major, 0.5)],
        key=lambda c: preference(tok, c, (0, "major"), after),
        reverse=True,
    )
    assert [c.ids for c in ranked] == [c_major, f_sharp, far]


def test_the_local_key_is_the_one_the_bars_around_the_span_fit(tok):
    from composer.model.infill import local_key, pitch_classes

    def bar(pitches):
        out = [tok.bar_id, tok.vocab["TimeSig_4/4"]]
        for k, p in enumerate(pitches):
            out += [tok.vocab[f"Position_{k * tok.steps_per_beat}"], tok.vocab["Program_0"],
                    tok.vocab[f"Pitch_{p}"], tok.vocab["Velocity_95"],
                    tok.vocab["Duration_1.0.12"]]  # fmt: skip
        return out

    g_major = bar([67, 71, 74, 66]) + bar([67, 62, 71, 67])
    assert pitch_classes(tok, g_major)[7] == 3 * tok.steps_per_beat  # three quarter-note Gs
    assert local_key(tok, g_major[:22], g_major[22:]) == (7, "major")
