"""Decoding: n candidates decoded as a batch under the constraints, the best one kept.

``decode`` takes the control sequence the plan stage produces (per-bar intensity, hits,
sections). The decoding loop keeps the model's KV cache between steps, feeds each row its
last token and its draft, and samples with a seeded generator, so the same seed and inputs
give the same tokens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from composer.errors import ComposerError
from composer.model.adherence import adherence
from composer.model.checkpoint import Checkpoint
from composer.model.constraints import Against, Cadence, KeyBias, PitchTilt, ScoreGrammar
from composer.model.draft import LookupDrafter, accept
from composer.model.fast import FastDecoder
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.types import Candidate, GenerationRequest, GenerationResult

# Tokens per bar to budget for (the grammar ends every row well before on real music).
_MAX_TOKENS_PER_BAR = 160
# Drafted tokens verified per row and step (composer/model/draft.py).
_MAX_DRAFT = 3


@dataclass(frozen=True)
class Prefix:
    """An instruction's prefix vectors for the decoder (composer.model.instruct), with
    classifier-free guidance: each step's log-probs are ``neutral + guidance * (instruction -
    neutral)``, where ``neutral`` is what the decoder writes after the average instruction's
    vectors. Guidance 1 (or no ``neutral``) is the instruction alone."""

    vectors: torch.Tensor  # (K, H)
    neutral: torch.Tensor | None = None  # (K, H)
    guidance: float = 1.0

    @property
    def guided(self) -> bool:
        return self.neutral is not None and self.guidance != 1.0


def processors(
    tok: ScoreTokenizer, req: GenerationRequest, batch: int, prompt_len: int
) -> tuple[ScoreGrammar, LogitsProcessorList]:
    grammar = ScoreGrammar(
        tok, req.meter, list(req.controls), batch, prompt_len, req.roles,
        every_role_every_bar=req.every_role_every_bar, kept=req.kept,
    )  # fmt: skip
    chain = LogitsProcessorList([KeyBias(tok, req.key, req.key_penalty, req.scale), grammar])
    if req.register_tilt or req.register_well:
        chain.insert(1, PitchTilt(tok, req.register_tilt, req.register_well))
    if req.against and req.against_penalty:
        chain.append(Against(tok, req.against, req.against_penalty, grammar))
    if req.cadence:
        chain.append(Cadence(tok, req.key, grammar))
    if req.temperature != 1.0:
        chain.append(TemperatureLogitsWarper(req.temperature))
    if req.top_p < 1.0:
        chain.append(TopPLogitsWarper(req.top_p, min_tokens_to_keep=1))
    return grammar, chain


@contextlib.contextmanager
def decoding_threads(n: int = 1) -> Iterator[None]:
    """Run torch ops on ``n`` threads, restoring the previous count after.

    One decoding step is a few small matrix products: intra-op threads buy little, and when
    another process holds a core their synchronisation costs 50x (measured: 705 vs 10 tokens/s
    with 2 threads on 2 cores, one busy).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def sample(
    ckpt: Checkpoint,
    req: GenerationRequest,
    progress: ProgressFn = no_progress,
    draft: int = _MAX_DRAFT,
    prefix: Prefix | None = None,
) -> tuple[list[list[int]], list[float], float]:
    """Decode ``req.candidates`` rows; returns their ids, mean raw log-probs (guided ones
    when the prefix or the request's style contrast guides) and tokens/s.

    Mixtral-style checkpoints decode with composer's lean decoder (bf16 weights as stored;
    composer/model/fast.py), which with ``draft`` > 0 verifies up to that many drafted tokens
    per row and step (composer/model/draft.py): the tokens kept are distributed as one-at-a-time
    sampling would draw them. Other architectures decode through transformers' forward and
    its KV cache. ``prefix``: an instruction's prefix vectors, placed before the header (and
    the guidance they are decoded with).
    """
    import time

    tok, model = ckpt.tokenizer, ckpt.model
    n = req.candidates
    context = ckpt.spec.context - (0 if prefix is None else len(prefix.vectors))
    primer = list(req.primer)
    if len(primer) > context // 2 - 3:  # the primer must leave room to write after it
        log.warning("primer of %d tokens dropped: the context holds %d", len(primer), context)
        primer = []
    header = tok.header(req.style, req.key) + primer
    grammar, chain = processors(tok, req, n, len(header))
    gen = torch.Generator().manual_seed(req.seed)
    budget = len(header) + req.bars * _MAX_TOKENS_PER_BAR + 4
    seqs = [list(header) for _ in range(n)]
    logp = [0.0] * n
    counts = [0] * n
    lean = FastDecoder.supports(model)
    drafter = LookupDrafter(seqs, draft if lean else 0)
    contrast = None
    if req.contrast is not None and req.contrast.active and req.contrast.against != req.style:
        contrast = (tok.vocab[f"Style_{req.contrast.against}"], req.contrast.scale)
    forward = _Forward(model, n, ckpt.spec.context, lean, prefix, contrast)
    held = 0  # tokens of the longest row in the model's cache
    # Tokens of each row left out of the cache by the last restart (the window slid past them):
    # the cache holds len(row) - 1 - dropped[b] of its tokens.
    dropped = [0] * n
    start = time.perf_counter()
    with decoding_threads():
        while not all(grammar.done()) and max(map(len, seqs)) < budget:
            proposals = [drafter.propose(b, grammar, grammar.rows[b]) for b in range(n)]
            drafts = [d for d, _ in proposals]
            width = 1 + max(map(len, drafts))
            # Each row: its last token (not yet in the cache) then its draft, padded.
            pad = [tok.pad_id] * width
            step = [
                s[-1:] + d + pad[: width - 1 - len(d)] for s, d in zip(seqs, drafts, strict=True)
            ]
            restart = None
            if held == 0 or held + width > context:
                # First step, or the cache is full: keep the header and the most recent tokens.
                keep = min(context * 3 // 4, min(map(len, seqs)) - 1) - len(header)
                keep = max(0, keep)
                restart = [
                    s[: min(len(header), len(s) - 1)] + s[len(s) - 1 - keep : -1] for s in seqs
                ]
                dropped = [len(s) - 1 - len(p) for s, p in zip(seqs, restart, strict=True)]
            logits = forward(torch.tensor(step), restart)  # (n, width, V)
            raw = torch.log_softmax(logits, -1)
            states = [st + [st[-1]] * (width - len(st)) for _, st in proposals]
            flat = [x for row in states for x in row]
            scores = logits.reshape(n * width, -1)
            for proc in chain:  # not chain(...): it inspects every processor's signature per call
                scores = proc.apply(scores, flat) if hasattr(proc, "apply") else proc(None, scores)
            probs = torch.softmax(scores, -1).view(n, width, -1)
            kept, drawn = accept(probs, drafts, gen)
            news = [drafts[b][: kept[b]] + [int(drawn[b])] for b in range(n)]
            # Raw log-probabilities of every new token, read in one indexing op.
            at = [(b, j, t) for b, new in enumerate(news) for j, t in enumerate(new)]
            lps = iter(raw[tuple(torch.tensor(at).T)].tolist())
            for b, new in enumerate(news):
                for t in new:
                    lp = next(lps)
                    if grammar.rows[b].expect != "done":
                        logp[b] += lp
                        counts[b] += 1
                    grammar.advance(grammar.rows[b], t)
                drafter.extend(b, new)
                seqs[b].extend(new)
            held = forward.rewind([len(s) - 1 - d for s, d in zip(seqs, dropped, strict=True)])
            progress("generate", min(r.bar for r in grammar.rows), req.bars)
    elapsed = time.perf_counter() - start
    rows = []
    plain_header = header[: len(header) - len(primer)]
    for row in seqs:
        row = plain_header + row[len(header) :]  # the primer is context, not output
        end = row.index(tok.eos_id) + 1 if tok.eos_id in row else len(row)
        rows.append(row[:end])
    mean_lp = [lp / max(c, 1) for lp, c in zip(logp, counts, strict=True)]
    return rows, mean_lp, sum(counts) / max(elapsed, 1e-9)


class _Forward:
    """forward(step (B, W), restart) -> logits (B, W, V) of the step's positions.

    ``restart`` (equal-length rows, or None) restarts the cache from those tokens first, after
    the prefix's vectors (K, H) when there are any. ``rewind(lengths)`` then keeps
    ``lengths[b]`` tokens of row b (a draft's rejected tail is dropped) and returns the longest
    row's length; lengths count tokens, not the vectors before them. With guidance, every row
    is decoded twice (B more rows, after the neutral vectors or, for a style ``contrast``
    (token id, scale), with that style token in the header) and the logits returned are the
    guided log-probs.
    """

    def __init__(
        self, model, batch: int, context: int, lean: bool, prefix: Prefix | None,
        contrast: tuple[int, float] | None = None,
    ):  # fmt: skip
        self.model = model
        self.guidance = prefix.guidance if prefix is not None and prefix.guided else None
        self.other_style = None
        if contrast is not None:
            if self.guidance:
                raise ValueError("an instruction's guidance and a style contrast do not combine")
            self.other_style, self.guidance = contrast
        rows = batch * (2 if self.guidance else 1)
        self.decoder = FastDecoder(model, rows, context) if lean else None
        self.cache = None
        self.vectors = None  # (rows, K, H)
        if prefix is not None:
            parts = [prefix.vectors] + ([prefix.neutral] if prefix.guided else [])
            self.vectors = torch.cat([v.expand(batch, -1, -1) for v in parts])
            if self.other_style is not None:  # the contrast rows read the same vectors
                self.vectors = torch.cat([self.vectors, self.vectors])
        self.held_vectors = 0 if prefix is None else len(prefix.vectors)

    def __call__(self, step: torch.Tensor, restart: list[list[int]] | None) -> torch.Tensor:
        if self.guidance:  # the neutral rows follow their own rows token for token
            step = torch.cat([step, step])
            if restart is not None:
                # Every restart keeps the header, BOS Style Key: index 1 is the style token.
                other = [r[:1] + [self.other_style] + r[2:] for r in restart]
                restart = restart + (restart if self.other_style is None else other)
        logits = self._run(step, restart)
        if not self.guidance:
            return logits
        cond, neutral = torch.log_softmax(logits, -1).chunk(2)
        return neutral + self.guidance * (cond - neutral)

    def _run(self, step: torch.Tensor, restart: list[list[int]] | None) -> torch.Tensor:
        if self.decoder is not None:
            if restart is not None:
                self.decoder.reset()
                if self.vectors is not None:
                    self.decoder.forward_all(embeds=self.vectors)
                self.decoder.forward_all(torch.tensor(restart))
            return self.decoder.forward_all(step)
        # transformers' forward: one token per row and step, so rows stay the same length.
        if restart is None:
            out = self.model(input_ids=step, cache=self.cache, use_cache=True)
        else:
            x = torch.cat([torch.tensor(restart), step], 1)
            embeds = self.model.get_input_embeddings()(x)
            if self.vectors is not None:
                embeds = torch.cat([self.vectors.to(embeds.dtype), embeds], 1)
            out = self.model(inputs_embeds=embeds, use_cache=True)
        self.cache = out.cache
        return out.logits[:, -step.shape[1] :].float()

    def rewind(self, lengths: list[int]) -> int:
        if self.decoder is not None:
            rows = lengths + lengths if self.guidance else lengths
            self.decoder.rewind(torch.tensor(rows) + self.held_vectors)
        return max(lengths)


def with_style_texture(ckpt: Checkpoint, req: GenerationRequest) -> GenerationRequest:
    """``req`` with the voices its style writes in the training corpus (the checkpoint's
    ``style_roles``) when it names none; a style the checkpoint has no texture for writes any."""
    texture = ckpt.info.get("style_roles", {}).get(req.style)
    if req.roles is not None or not texture:
        return req
    return dataclasses.replace(req, roles=tuple(texture))


def decode(
    ckpt: Checkpoint,
    req: GenerationRequest,
    progress: ProgressFn = no_progress,
    prefix: Prefix | None = None,
) -> GenerationResult:
    """Decode ``req.candidates`` candidates and keep the best by likelihood and adherence.

    ``prefix``: an instruction's prefix (composer.model.instruct.Instruct.prefix), for a
    checkpoint with the instruct adapter merged."""
    check_request(req, ckpt.tokenizer)
    req = with_style_texture(ckpt, req)
    rows, lps, speed = sample(ckpt, req, progress, prefix=prefix)
    cands = []
    for row, lp in zip(rows, lps, strict=True):
        adh, details = adherence(ckpt.tokenizer, row, req)
        cands.append(Candidate(row, lp, adh, details))
    # The key heard as asked first (an explicit request), then adherence to the plan's
    # controls, then likelihood to break near-ties.
    best = max(
        cands,
        key=lambda c: (
            tuple(c.details.get("key_heard", ())) == tuple(req.key),
            round(c.adherence, 2),
            c.log_likelihood,
        ),
    )
    return GenerationResult(req, best, cands, speed)


_MAX_CANDIDATES = 64  # decoded as one batch: memory grows with it


def check_request(req: GenerationRequest, tok: ScoreTokenizer, tempo: float | None = None) -> None:
    """Refuse a request the decoder cannot serve, in one line, before any decoding.

    With ``tempo`` (quarter notes per minute), also the tempo and the length in seconds
    against :func:`composer.config.limits`."""
    from composer.config import duration_problem, tempo_problem
    from composer.music.words import meter_problem

    problems = []
    if req.bars < 1:
        problems.append("at least one bar is needed")
    if not 1 <= req.candidates <= _MAX_CANDIDATES:
        problems.append(f"candidates must be 1 to {_MAX_CANDIDATES}, not {req.candidates}")
    if not (math.isfinite(req.temperature) and req.temperature > 0):
        problems.append(f"temperature must be above 0, not {req.temperature}")
    if not 0 < req.top_p <= 1:
        problems.append(f"top-p must be above 0 and at most 1, not {req.top_p}")
    num, den = req.meter
    if why := meter_problem(req.meter, tok.spec.meters):
        problems.append(why)
    elif tempo is not None:
        if why := tempo_problem(tempo):
            problems.append(why)
        elif why := duration_problem(req.bars * num * 4 / den * 60 / tempo):
            problems.append(f"{req.bars} bars at {tempo:g} bpm: {why}")
    if problems:
        raise ComposerError(None, "; ".join(problems))
