"""Draft tokens for speculative decoding: what the grammar forces, and what the row repeats.

A decoding step on a CPU costs about the same for one new token per row as for a few: the time
goes to reading the weights and to per-operation overhead, not to arithmetic. So each step
feeds every row its last token plus a guessed continuation, and keeps the guesses the sampler
would have drawn anyway (``accept`` below). The guesses cost no model:

- a token the grammar forces (the bar line, the meter and the bar's controls after it);
- otherwise the continuation of the longest recent n-gram of the row itself (prompt-lookup
  decoding): music repeats rhythms, velocities and figures, so the token that followed the last
  occurrence of the current context is often the one sampled again; where no n-gram matches,
  the latest recent token allowed in that position (a velocity, duration or voice repeats more
  often than not). Such a guess rarely widens the step, whose width is set by the row with the
  longest draft, so it is nearly free.

The accepted tokens are distributed exactly as one-token-per-step sampling would draw them;
only the random numbers are consumed differently.
"""

from __future__ import annotations

import torch

from composer.model.constraints import ScoreGrammar, _Row

_ORDERS = (4, 3, 2)  # context lengths tried for a match, longest first
_RECENT = 16  # tokens looked back for one allowed in the drafted position


class LookupDrafter:
    """Per-row tables of n-gram -> index of the token that followed its latest occurrence."""

    def __init__(self, rows: list[list[int]], max_draft: int):
        self.max_draft = max_draft
        self.seqs = [[] for _ in rows]
        self.tables: list[dict[tuple[int, ...], int]] = [{} for _ in rows]
        for b, row in enumerate(rows):
            self.extend(b, row)

    def extend(self, b: int, tokens: list[int]) -> None:
        """Append ``tokens`` to row ``b`` and index the n-grams they complete."""
        seq, table = self.seqs[b], self.tables[b]
        for t in tokens:
            q = len(seq)
            for m in _ORDERS:
                if q >= m:
                    table[tuple(seq[q - m : q])] = q
            seq.append(t)

    def _follow(self, b: int, context: list[int]) -> tuple[int, int] | None:
        """(row, index in it) of the token after the latest match of ``context``'s suffix:
        in row ``b`` itself, else in the other rows (candidates of one request share much)."""
        for m in _ORDERS:
            if len(context) < m:
                continue
            gram = tuple(context[-m:])
            for row in [b] + [r for r in range(len(self.tables)) if r != b]:
                at = self.tables[row].get(gram)
                if at is not None:
                    return row, at
        return None

    @staticmethod
    def _recent(seq: list[int], allow: torch.Tensor) -> int | None:
        """The latest of the last ``_RECENT`` tokens that is allowed here: with no n-gram to
        follow, the row's last velocity, duration or role is still the likeliest next one."""
        for t in reversed(seq[-_RECENT:]):
            if allow[t]:
                return t
        return None

    def propose(self, b: int, grammar: ScoreGrammar, state: _Row) -> tuple[list[int], list[_Row]]:
        """Up to ``max_draft`` tokens for row ``b``, each allowed where it stands, and the
        grammar state before each draft position and after the last (len(draft) + 1 states)."""
        own = self.seqs[b]
        draft: list[int] = []
        states = [state]
        seq, at = own, None  # the row being followed, and the index of its next token
        while len(draft) < self.max_draft and state.expect != "done":
            allow, forced = grammar.allowed(state)
            if forced is not None:
                token = forced
                at = at + 1 if at is not None and at < len(seq) and seq[at] == forced else None
            else:
                if at is None or at >= len(seq) or not allow[seq[at]]:
                    found = self._follow(b, (own[-_ORDERS[0] :] + draft)[-_ORDERS[0] :])
                    seq, at = (self.seqs[found[0]], found[1]) if found else (own, None)
                if at is not None and allow[seq[at]]:
                    token, at = seq[at], at + 1
                else:
                    token = self._recent(own + draft, allow)
                    if token is None:
                        break
                    at = None
            draft.append(token)
            state = state.copy()
            grammar.advance(state, token)
            states.append(state)
        return draft, states


def accept(
    probs: torch.Tensor, drafts: list[list[int]], generator: torch.Generator
) -> tuple[list[int], torch.Tensor]:
    """Speculative sampling against drafts that put all their mass on one token.

    probs: (B, K + 1, V), the constrained distribution at each draft position and after the
    last. Draft token d at position j is kept with probability p_j(d); at the first one not
    kept, the token is drawn from p_j without d (renormalised); after a fully kept draft, from
    p at the next position. Returns the number kept per row and the drawn tokens (B,).
    """
    b, k1, _ = probs.shape
    k = k1 - 1
    d = torch.zeros(b, max(k, 1), dtype=torch.long)
    valid = torch.zeros(b, max(k, 1), dtype=torch.bool)
    for i, row in enumerate(drafts):
        d[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        valid[i, : len(row)] = True
    kept = torch.zeros(b, dtype=torch.long)
    if k > 0:
        p_draft = probs[:, :k].gather(2, d[:, :k, None]).squeeze(2)  # (B, K)
        ok = (torch.rand(b, k, generator=generator) < p_draft) & valid[:, :k]
        kept = ok.long().cumprod(1).sum(1)
    final = probs[torch.arange(b), kept].clone()  # (B, V)
    lengths = torch.tensor([len(r) for r in drafts])
    rejected = (kept < lengths).nonzero().flatten()
    final[rejected, d[rejected, kept[rejected]]] = 0.0
    return kept.tolist(), torch.multinomial(final, 1, generator=generator).squeeze(1)
