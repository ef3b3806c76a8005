"""An interpolated Kneser-Ney n-gram model over token ids: the baseline the decoder must beat.

Counts are kept as sorted int64 keys (each token takes ``bits`` bits of the key), so an order-5
model over millions of tokens fits in a few hundred MB of numpy arrays and is scored for a whole
held-out set at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_DISCOUNT = 0.75


@dataclass
class _Order:
    keys: np.ndarray  # sorted int64 n-gram keys (context tokens then the predicted one)
    counts: np.ndarray  # raw counts (highest order) or continuation counts (lower orders)
    ctx_keys: np.ndarray  # sorted context keys
    ctx_total: np.ndarray  # sum of counts over the next token, per context
    ctx_types: np.ndarray  # number of distinct next tokens, per context


class KneserNey:
    """Interpolated Kneser-Ney with one absolute discount, orders 1..n."""

    def __init__(self, order: int, vocab_size: int):
        self.n = order
        self.vocab_size = vocab_size
        self.bits = max(1, math.ceil(math.log2(vocab_size)))
        if self.bits * order > 62:
            raise ValueError(f"order {order} over {vocab_size} tokens does not fit in 64 bits")
        self.orders: list[_Order] = []

    def _grams(self, seqs: Sequence[np.ndarray], k: int) -> np.ndarray:
        """All k-gram keys of all sequences."""
        out = []
        for s in seqs:
            s = np.asarray(s, dtype=np.int64)
            if len(s) < k:
                continue
            key = np.zeros(len(s) - k + 1, dtype=np.int64)
            for j in range(k):
                key = (key << self.bits) | s[j : len(s) - k + 1 + j]
            out.append(key)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def fit(self, seqs: Sequence[np.ndarray]) -> KneserNey:
        self.orders = []
        for k in range(1, self.n + 1):
            keys, counts = np.unique(self._grams(seqs, k), return_counts=True)
            if k < self.n:
                # Continuation count: how many distinct tokens precede this k-gram.
                longer = np.unique(self._grams(seqs, k + 1)) & ((1 << (self.bits * k)) - 1)
                keys, counts = np.unique(longer, return_counts=True)
            ctx = keys >> self.bits
            ctx_keys, first = np.unique(ctx, return_index=True)
            ctx_total = np.add.reduceat(counts, first) if len(first) else counts[:0]
            ctx_types = np.diff(np.append(first, len(ctx)))
            self.orders.append(_Order(keys, counts, ctx_keys, ctx_total, ctx_types))
        return self

    def log_probs(self, seq: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of ``seq`` after the first, given its past."""
        s = np.asarray(seq, dtype=np.int64)
        T = len(s)
        p = np.full(T - 1, 1.0 / self.vocab_size)
        for k in range(1, self.n + 1):
            o = self.orders[k - 1]
            # For target position t (1..T-1), the k-gram ending at t, if the history is long enough.
            t = np.arange(1, T)
            valid = t - (k - 1) >= 0
            key = np.zeros(T - 1, dtype=np.int64)
            for j in range(k):
                idx = np.clip(t - (k - 1) + j, 0, T - 1)
                key = (key << self.bits) | s[idx]
            ctx = key >> self.bits
            c = _lookup(o.keys, o.counts, key)
            ci = np.searchsorted(o.ctx_keys, ctx)
            ci = np.clip(ci, 0, max(len(o.ctx_keys) - 1, 0))
            hit = (o.ctx_keys[ci] == ctx) if len(o.ctx_keys) else np.zeros_like(valid)
            total = np.where(hit, o.ctx_total[ci], 0).astype(np.float64)
            types = np.where(hit, o.ctx_types[ci], 0).astype(np.float64)
            safe = np.maximum(total, 1.0)
            mixed = np.maximum(c - _DISCOUNT, 0) / safe + _DISCOUNT * types / safe * p
            p = np.where(valid & (total > 0), mixed, p)
        return np.log(p)

    def nll(self, seqs: Sequence[np.ndarray]) -> float:
        """Mean negative log-likelihood per predicted token (nats) over ``seqs``."""
        total, count = 0.0, 0
        for s in seqs:
            if len(s) > 1:
                lp = self.log_probs(s)
                total -= float(lp.sum())
                count += len(lp)
        return total / max(count, 1)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(query))
    i = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[i] == query, values[i], 0).astype(np.float64)
