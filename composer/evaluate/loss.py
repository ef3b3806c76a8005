"""``composer eval loss``: the decoder's held-out loss against n-gram baselines on the same
windows.

Every model is scored on the same token windows (``eval_windows``: each held-out piece cut at
bar lines, each window with the piece's header), in nats per predicted token. The n-gram
baselines are interpolated Kneser-Ney of orders 3 to 5 fitted on the training split, once on
the tokens as written and once with the same transposition augmentation the decoder trains
with (every shift that keeps the piece in range), so the comparison gives the baseline the
same data the decoder saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.model.checkpoint import load_checkpoint
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.train.data import TokenCache, eval_windows
from composer.train.ngram import KneserNey
from composer.train.trainer import evaluate


@dataclass
class LossRow:
    name: str
    nll: float  # nats per predicted token
    seconds: float

    @property
    def perplexity(self) -> float:
        return float(np.exp(self.nll))


@dataclass
class LossEval:
    split: str
    windows: int
    tokens: int
    rows: list[LossRow] = field(default_factory=list)

    @property
    def model(self) -> LossRow:
        return self.rows[0]

    @property
    def best_baseline(self) -> LossRow:
        return min(self.rows[1:], key=lambda r: r.nll)

    def table(self) -> str:
        lines = [
            f"held-out split {self.split!r}: {self.windows} windows, {self.tokens} predicted "
            "tokens, the same for every row",
            f"{'model':44s} {'nats/token':>10s} {'perplexity':>10s} {'time s':>7s}",
        ]
        for r in self.rows:
            lines.append(f"{r.name:44s} {r.nll:10.4f} {r.perplexity:10.3f} {r.seconds:7.1f}")
        best = self.best_baseline
        verdict = "beats" if self.model.nll < best.nll else "does NOT beat"
        lines.append(
            f"decoder {verdict} the best n-gram ({best.name}): {self.model.nll:.4f} vs "
            f"{best.nll:.4f} nats/token ({(best.nll - self.model.nll) / best.nll:+.1%})"
        )
        return "\n".join(lines)


def transposed_pieces(cache: TokenCache, tok: ScoreTokenizer, split: str) -> list[np.ndarray]:
    """Every piece of ``split`` in every transposition that keeps it in range."""
    out = []
    for p in cache.split(split):
        ids = cache.ids(p)
        for shift in range(p.shifts[0], p.shifts[1] + 1):
            moved = tok.transpose(ids, shift)
            if moved is not None:
                out.append(moved)
    return out


def eval_loss(
    model: str | Path = DEFAULT_MODEL,
    cache: str | Path | None = None,
    split: str = "val",
    orders: tuple[int, ...] = (3, 4, 5),
    transposed: bool = True,
    progress: ProgressFn = no_progress,
) -> LossEval:
    """Score the checkpoint and the n-gram baselines on the same held-out windows."""
    ckpt = load_checkpoint(model)
    tok = ckpt.tokenizer
    data = TokenCache.load(cache, tok)
    data.check_trained_with(ckpt.info, model)
    windows = eval_windows(data, split, ckpt.spec.context)
    report = LossEval(split, len(windows), sum(len(w) - 1 for w in windows))
    steps = len(orders) * (2 if transposed else 1) + 1
    progress("eval loss", 0, steps)
    t0 = time.perf_counter()
    nll = evaluate(ckpt.model, windows, tok.pad_id)
    report.rows.append(LossRow(f"decoder ({Path(model).name})", nll, time.perf_counter() - t0))
    sets = [("as written", [data.ids(p) for p in data.split("train")])]
    if transposed:
        sets.append(("transposed like the decoder", None))
    done = 1
    for label, seqs in sets:
        if seqs is None:  # built late: it is the largest array here
            seqs = transposed_pieces(data, tok, "train")
        for n in orders:
            t0 = time.perf_counter()
            lm = KneserNey(n, len(tok)).fit(seqs)
            nll = lm.nll(windows)
            del lm
            report.rows.append(
                LossRow(f"Kneser-Ney {n}-gram, {label}", nll, time.perf_counter() - t0)
            )
            log.info("%s: %.4f", report.rows[-1].name, nll)
            done += 1
            progress("eval loss", done, steps)
        del seqs
    return report
