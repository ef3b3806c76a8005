"""``composer train --infill``: the infill adapter, LoRA over the shipped base, trained on
fill-in-the-middle examples cut from the corpus token cache.

Each example is a span of 1 to 8 whole bars of a training piece, laid out as the edit stage
asks for it (composer.model.infill): the bars after the span, EOS, the bars before it, then
the span. The loss is on the span's tokens alone: the context is read, not learnt. Pieces
are drawn by length and transposed as the decoder was trained; spans start at any bar, so
some have nothing before or after them, as the first and last bars of a score do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from composer.errors import ComposerError
from composer.model.adapters import AdapterConfig, adapter_path
from composer.model.checkpoint import load_checkpoint
from composer.model.infill import ADAPTER, MAX_AFTER, MAX_BEFORE, NEAR, whole_bars
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER
from composer.train.adapter import AdapterResult, save_adapter, wrap_for_training
from composer.train.data import PieceEntry, TokenCache
from composer.train.run import load_data
from composer.train.trainer import TrainConfig, train

SPAN_BARS = (1, 2, 2, 3, 4, 4, 4, 6, 8)  # drawn uniformly: edits of 2 to 4 bars are the usual


@dataclass(frozen=True)
class InfillTrainConfig:
    """The infill adapter's LoRA shape and schedule. Saved in its adapter.json."""

    lora: AdapterConfig = AdapterConfig()
    train: TrainConfig = TrainConfig(
        seq_len=768, batch_size=8, lr=2e-3, warmup_steps=20, epochs=1.0, max_minutes=50.0,
        eval_every_epochs=0.25, checkpoint_every_steps=200,
    )  # fmt: skip
    val_examples: int = 256


@dataclass
class Example:
    """One span of a piece and the bars around it, each cut to the layout's token budget."""

    header: list[int]  # BOS Style Key
    before: list[int]
    after: list[int]
    span: list[int]  # the span's bars (and EOS where it ends the piece)
    piece: str
    bar: int  # the span's first bar (0-based)
    bars: int

    def infill(self, eos_id: int, after: bool = True) -> tuple[np.ndarray, int]:
        """(ids, start): the infill layout, the span from ``start``; ``after=False`` withholds
        the bars after the span (the layout of a span that ends a piece)."""
        ctx = self.header + (self.after if after else []) + [eos_id] + self.before
        return np.asarray(ctx + self.span, np.int64), len(ctx)

    def continuation(self) -> tuple[np.ndarray, int]:
        """(ids, start): the span after the bars before it, as the base decoder reads them."""
        ctx = self.header + self.before
        return np.asarray(ctx + self.span, np.int64), len(ctx)


def bar_edges(piece: PieceEntry, ids: np.ndarray, eos_id: int) -> list[int]:
    """Token index of each bar's start, and of the end of the last bar (before EOS)."""
    return list(piece.bars) + [len(ids) - 1 if ids[-1] == eos_id else len(ids)]


def cut(
    tok: ScoreTokenizer, piece: PieceEntry, ids: np.ndarray, lo: int, hi: int, length: int
) -> Example | None:
    """The example of bars [lo, hi) of ``piece`` (``ids``: its tokens, header first), or None
    when its infill layout does not fit ``length`` tokens."""
    edges = bar_edges(piece, ids, tok.eos_id)
    n = len(edges) - 1
    before = whole_bars(ids[edges[max(0, lo - NEAR)] : edges[lo]].tolist(), tok.bar_id,
                        MAX_BEFORE, keep_start=False)  # fmt: skip
    after = whole_bars(ids[edges[hi] : edges[min(n, hi + NEAR)]].tolist(), tok.bar_id,
                       MAX_AFTER, keep_start=True)  # fmt: skip
    span = ids[edges[lo] : edges[hi]].tolist()
    if hi == n and ids[-1] == tok.eos_id:
        span.append(tok.eos_id)  # the span ends the piece: it learns to end it
    ex = Example(ids[:HEADER].tolist(), before, after, span, piece.id, lo, hi - lo)
    return ex if len(ex.infill(tok.eos_id)[0]) <= length else None


def draw(
    cache: TokenCache, tok: ScoreTokenizer, pieces: list[PieceEntry], length: int,
    rng: np.random.Generator, transpose: bool = True, span_bars: tuple[int, ...] = SPAN_BARS,
    inside: bool = False,
) -> Example:  # fmt: skip
    """A random example: a piece by length, a span length, a first bar, a transposition;
    ``inside``: only spans with a bar before and after them."""
    weights = np.array([min(p.length, length) for p in pieces], np.float64)
    while True:
        piece = pieces[rng.choice(len(pieces), p=weights / weights.sum())]
        ids = cache.ids(piece)
        n = len(piece.bars)
        want = min(int(rng.choice(span_bars)), n - 2 * inside)
        if want < 1:
            continue
        lo = int(rng.integers(int(inside), n - want - int(inside) + 1))
        if transpose:
            shifted = tok.transpose(ids, int(rng.integers(piece.shifts[0], piece.shifts[1] + 1)))
            ids = np.asarray(shifted, np.int64) if shifted is not None else ids
        for bars in range(want, 0, -1):  # shorter spans where a long one does not fit
            ex = cut(tok, piece, ids, lo, lo + bars, length)
            if ex is not None:
                return ex


def examples(
    cache: TokenCache, tok: ScoreTokenizer, split: str, count: int, length: int, seed: int,
    **how,
) -> list[Example]:  # fmt: skip
    """``count`` fixed examples of ``split`` (untransposed): validation and evaluation sets;
    ``how``: draw's span_bars and inside."""
    pieces = cache.split(split)
    if not pieces:
        raise ComposerError(cache.folder, f"no pieces in the {split} split")
    rng = np.random.default_rng(seed)
    return [draw(cache, tok, pieces, length, rng, transpose=False, **how) for _ in range(count)]


def batches(
    cache: TokenCache, tok: ScoreTokenizer, length: int, batch_size: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (input_ids, labels) batches; only the span's tokens are labelled."""
    pieces = cache.split("train")
    rng = np.random.default_rng(seed)
    while True:
        ids = np.full((batch_size, length), tok.pad_id, np.int64)
        labels = np.full((batch_size, length), -100, np.int64)
        for r in range(batch_size):
            row, start = draw(cache, tok, pieces, length, rng).infill(tok.eos_id)
            ids[r, : len(row)] = row
            labels[r, start : len(row)] = row[start:]
        yield torch.from_numpy(ids), torch.from_numpy(labels)


@torch.no_grad()
def span_nll(
    model: torch.nn.Module, rows: list[tuple[np.ndarray, int]], pad_id: int, batch_size: int = 8
) -> float:
    """Mean NLL (nats per token) of each row's tokens from its start index on: (ids, start)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    for s in range(0, len(order), batch_size):
        chunk = [rows[i] for i in order[s : s + batch_size]]
        L = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), L), pad_id, dtype=torch.long)
        scored = torch.zeros((len(chunk), L), dtype=torch.bool)
        for r, (row, start) in enumerate(chunk):
            ids[r, : len(row)] = torch.from_numpy(np.asarray(row, np.int64))
            scored[r, start : len(row)] = True
        logp = torch.log_softmax(model(input_ids=ids).logits[:, :-1].float(), -1)
        nll = -logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, L-1): token t+1 given <= t
        m = scored[:, 1:]
        total += float(nll[m].sum())
        count += int(m.sum())
    model.train(was_training)
    return total / max(count, 1)


def train_infill(
    *,
    model: str | Path = DEFAULT_MODEL,
    cache: Path | None = None,
    config: InfillTrainConfig = InfillTrainConfig(),
    minutes: float | None = None,
    force: bool = False,
    workers: int = 1,
    progress: ProgressFn = no_progress,
) -> AdapterResult:
    """Train the infill adapter of ``model`` on the corpus cache and save it beside the model;
    its adapter.json records the base's and the adapter's loss on the same validation spans."""
    out = adapter_path(model, ADAPTER)
    if out.exists() and not force:
        raise ComposerError(out, "adapter already exists (pass --force to replace it)")
    base = load_checkpoint(model)
    tok = base.tokenizer
    cfg = dataclasses.replace(config.train, model=base.spec)
    if minutes is not None:
        cfg = dataclasses.replace(cfg, max_minutes=minutes)
    data = load_data(None, "other", cache, tok, seed=cfg.seed, workers=workers, progress=progress)
    data.check_trained_with(base.info, model)  # never tune on pieces the base holds out
    val = [
        e.infill(tok.eos_id)
        for e in examples(data, tok, "val", config.val_examples, cfg.seq_len, cfg.seed)
    ]
    base_val = span_nll(base.model, val, tok.pad_id)
    log.info("infill: base reads the layout at %.4f nats/token", base_val)
    peft_model = wrap_for_training(base, config.lora, seed=cfg.seed)

    def save(trained, info: dict) -> None:
        raw = dataclasses.asdict(dataclasses.replace(config, train=cfg))  # as run
        raw["train"].pop("model")
        info = {**info, "adapter": ADAPTER, "layout": "after EOS before span",
                "base_val_loss": round(base_val, 4), "infill_train_config": raw,
                "val_spans": len(val)}  # fmt: skip
        save_adapter(trained, out, config.lora, base, info)

    staging = data.folder.parent / "adapter-state" / f"{Path(model).resolve().name}-{ADAPTER}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    result = train(
        data, tok, cfg, staging, progress=progress, model=peft_model, save=save,
        batches=batches(data, tok, cfg.seq_len, cfg.batch_size, cfg.seed),
        validate=lambda m: span_nll(m, val, tok.pad_id),
    )  # fmt: skip
    size = sum(f.stat().st_size for f in out.iterdir())
    return AdapterResult(out, ADAPTER, None, result.steps, result.minutes, base_val,
                         result.val_loss if val else math.nan, size)  # fmt: skip
