"""``composer eval infill``: does the infill adapter use the bars after a span?

On spans of held-out corpus pieces (composer.train.infill's draw, seeded, untransposed):

- loss: nats per token of the span's own tokens, the same tokens in every row: the infill
  adapter reading the bars after and before the span; the same adapter with the bars after
  withheld; the base decoder continuing from the bars before (what the edit stage did before
  the adapter); and the best Kneser-Ney n-gram (orders 3 to 5, fitted on the training split)
  continuing from the same bars.
- seams: four-bar spans with bars on both sides are written again by the adapter and by the
  base's continuation, and measured where they meet the score: the melody's interval into
  and out of the span (semitones), the onset gap across each seam (quarter notes from the
  last attack before the bar line to the first one after it), and the share of spans whose
  notes fit the piece's key best. The corpus's own spans give the figures at the same places.
- parts: the same spans (of one meter, with a melody and other parts) written again in part,
  as an edit of some tracks does: the melody (the lowest role), or the other parts, with the
  rest given (forced where they stand, so the decoder reads them as it writes) or with every
  part written afresh (the part taken from it), each also with the rest heard where each pitch
  is written (constraints.Against at AGAINST, as an edit writes). The share of the written
  part's attacks consonant with the corpus's other parts, for the first candidate and for the
  most consonant of CANDIDATES (the edit's choice), against the corpus's own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.model.checkpoint import load_checkpoint
from composer.model.infill import (
    ADAPTER,
    AGAINST,
    CANDIDATES,
    given_notes,
    local_key,
    pitch_classes,
    preference,
    sounding_notes,
)  # fmt: skip
from composer.music.harmony import consonant_share
from composer.music.keys import find_key
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import PROGRAM, TIMESIG
from composer.types import GenerationRequest

SEAM_BARS = 4
TOLERANCE = 0.15  # seam figures within 15% of the corpus's
FIGURES = ("into", "out of", "gap in", "gap out", "in key")


@dataclass
class Seams:
    """Mean seam figures over spans (each mean over the spans where it is defined)."""

    into: float  # |semitones|: the melody's last note before the span to its first in it
    out_of: float  # its last in the span to its first after it
    gap_in: float  # quarter notes between the last attack before the span and the first in it
    gap_out: float  # the same across the span's end
    in_key: float  # share of spans whose notes fit the piece's key best
    spans: int

    def values(self) -> tuple[float, ...]:
        return (self.into, self.out_of, self.gap_in, self.gap_out, self.in_key)


@dataclass
class InfillEval:
    split: str
    spans: int
    tokens: int
    loss: list[tuple[str, float]] = field(default_factory=list)  # (row, nats/token)
    # corpus; infill and continuation, each by its first candidate and by the edit's choice
    seams: dict[str, Seams] = field(default_factory=dict)
    # the melody's consonance with the other parts: corpus; others given or written, each by
    # the first candidate and by the edit's choice
    parts: dict[str, float] = field(default_factory=dict)
    part_spans: int = 0
    seconds: float = 0.0

    def within(self, name: str) -> list[bool]:
        """Per figure: ``name``'s seam figure within TOLERANCE of the corpus's."""
        ref = self.seams["corpus"].values()
        return [abs(v - r) <= TOLERANCE * abs(r) for v, r in
                zip(self.seams[name].values(), ref, strict=True)]  # fmt: skip

    def table(self) -> str:
        loss = dict(self.loss)
        lines = [
            f"held-out split {self.split!r}: {self.spans} spans of 1-8 bars, {self.tokens} span "
            "tokens, the same in every row",
            f"{'model':58s} {'nats/token':>10s}",
            *(f"{name:58s} {nll:10.4f}" for name, nll in self.loss),
        ]
        fill, cont = loss[_INFILL], loss[_CONTINUE]
        verdict = "lower" if fill < cont else "NOT lower"
        lines.append(f"infilling's loss is {verdict} than continuation's: {fill:.4f} vs "
                     f"{cont:.4f} ({(cont - fill) / cont:+.1%})")  # fmt: skip
        if self.seams:
            n = self.seams["corpus"].spans
            lines += ["", f"seams of {n} {SEAM_BARS}-bar spans with bars on both sides "
                      f"(target: within {TOLERANCE:.0%} of the corpus)",
                      f"{'':20s}" + "".join(f"{f:>10s}" for f in FIGURES)]  # fmt: skip
            for name, s in self.seams.items():
                row = f"{name:20s}" + "".join(f"{v:10.2f}" for v in s.values())
                if name != "corpus":
                    ok = self.within(name)
                    row += f"   within 15%: {sum(ok)}/{len(ok)}"
                lines.append(row)
            lines.append("into/out of: mean |semitones| of the melody across each seam; gap "
                         "in/out: mean quarter notes between attacks across each seam; in "
                         "key: share of spans whose notes fit the piece's key best; 1st: the "
                         f"first of {CANDIDATES} candidates decoded; edit: the one the edit "
                         "stage keeps (melody connected to the bars after, in the key of the "
                         "bars around it, nearest the controls)")  # fmt: skip
        if self.parts:
            lines += ["", f"{self.part_spans} of those spans (one meter, a melody and other "
                      "parts) written again in part, the melody (the lowest role) or the rest: "
                      "share of the written part's attacks consonant with the corpus's other "
                      "parts (edit: the most consonant of the candidates)"]  # fmt: skip
            lines += [f"{name:58s} {v:6.1%}" for name, v in self.parts.items()]
        lines.append(f"({self.seconds / 60:.1f} min)")
        return "\n".join(lines)


_INFILL = "infill adapter, bars after and before"
_CONTINUE = "base decoder, continuing from the bars before"


def eval_infill(
    model: str | Path = DEFAULT_MODEL,
    cache: str | Path | None = None,
    split: str = "test",
    spans: int = 512,
    seam_spans: int = 96,
    seed: int = 0,
    progress: ProgressFn = no_progress,
) -> InfillEval:
    """Score the infill adapter, the base's continuation and the n-gram on the same spans, and
    write ``seam_spans`` spans again with the adapter and with continuation."""
    from composer.model.adapters import adapter_path, merge_adapter
    from composer.train.data import TokenCache
    from composer.train.infill import examples, span_nll
    from composer.train.ngram import KneserNey

    start = time.perf_counter()
    base = load_checkpoint(model)
    tok = base.tokenizer
    filled = merge_adapter(base, adapter_path(model, ADAPTER))
    data = TokenCache.load(cache, tok)
    data.check_trained_with(base.info, model)
    length = base.spec.context
    exs = examples(data, tok, split, spans, length, seed)
    report = InfillEval(split, len(exs), sum(len(e.span) for e in exs))
    rows = [
        (_INFILL, filled.model, [e.infill(tok.eos_id) for e in exs]),
        ("infill adapter, bars after withheld", filled.model,
         [e.infill(tok.eos_id, after=False) for e in exs]),
        (_CONTINUE, base.model, [e.continuation() for e in exs]),
    ]  # fmt: skip
    steps = len(rows) + 3 + 10 * seam_spans
    for k, (name, m, batch) in enumerate(rows, 1):
        report.loss.append((name, span_nll(m, batch, tok.pad_id)))
        progress("eval infill", k, steps)
    train = [data.ids(p) for p in data.split("train")]
    best = None
    for n in (3, 4, 5):
        lm = KneserNey(n, len(tok)).fit(train)
        nll = _ngram_span_nll(lm, [e.continuation() for e in exs])
        log.info("Kneser-Ney %d-gram: %.4f", n, nll)
        best = min(best or (n, nll), (n, nll), key=lambda x: x[1])
        progress("eval infill", len(rows) + n - 2, steps)
    del lm, train
    report.loss.append((f"Kneser-Ney {best[0]}-gram, continuing from the bars before", best[1]))
    if seam_spans:
        inner = examples(data, tok, split, seam_spans, length, seed + 1,
                         span_bars=(SEAM_BARS,), inside=True)  # fmt: skip
        report.seams["corpus"] = _seams(tok, inner, [e.span for e in inner])
        done = len(rows) + 3
        for name, ckpt, infill in (("infill", filled, True), ("continuation", base, False)):
            first, chosen = [], []
            for k, e in enumerate(inner):
                one, best = _write(ckpt, tok, e, infill, seed + k)
                first.append(one)
                chosen.append(best)
                done += 1
                progress("eval infill", done, steps)
            report.seams[f"{name}, 1st"] = _seams(tok, inner, first)
            report.seams[f"{name}, edit"] = _seams(tok, inner, chosen)
        # Spans of one meter with a melody and another part (an edit never crosses a meter).
        parts = [e for e in inner if len(_roles(tok, e.span)) > 1
                 and len({i for i in e.span if tok.kind[i] == TIMESIG}) == 1]  # fmt: skip
        report.part_spans = len(parts)
        for part in ("melody", "accompaniment"):
            sides = [{_roles(tok, e.span)[0]} if part == "melody" else
                     set(_roles(tok, e.span)[1:]) for e in parts]  # fmt: skip
            report.parts[f"{part}: corpus"] = float(
                np.mean([_against(tok, e, e.span, w) for e, w in zip(parts, sides, strict=True)])
            )
            for how, given, heard in (
                ("the rest given", True, 0.0), ("the rest written afresh", False, 0.0),
                ("the rest given and heard", True, AGAINST),
                ("the rest written afresh and heard", False, AGAINST),
            ):  # fmt: skip
                first, chosen = [], []
                for k, (e, w) in enumerate(zip(parts, sides, strict=True)):
                    made = _parts(filled, tok, e, w, given, seed + k, heard)
                    shares = [_against(tok, e, c, w) for c in made]
                    first.append(shares[0])
                    chosen.append(max(shares))
                    progress("eval infill", done + k + 1, steps)
                done += len(parts)
                report.parts[f"{part}: {how}, 1st"] = float(np.mean(first))
                report.parts[f"{part}: {how}, edit"] = float(np.mean(chosen))
    report.seconds = time.perf_counter() - start
    return report


def _ngram_span_nll(lm, rows: list[tuple[np.ndarray, int]]) -> float:
    total, count = 0.0, 0
    for ids, start in rows:
        lp = lm.log_probs(ids)[start - 1 :]  # log_probs[t] predicts token t + 1
        total -= float(lp.sum())
        count += len(lp)
    return total / max(count, 1)


def _write(ckpt, tok: ScoreTokenizer, e, infill: bool, seed: int) -> tuple[list[int], list[int]]:
    """The span of example ``e`` written again, by the infill layout or after the bars before
    it alone, with the corpus span's own bar controls: the first candidate decoded, and the
    one of CANDIDATES the edit stage would keep (composer.model.infill.preference)."""
    from composer.model.decode import decode

    body = [i for i in e.span if i != tok.eos_id]
    sig = next(i for i in body if tok.kind[i] == TIMESIG)
    meter = (int(tok.value[sig]) // 100, int(tok.value[sig]) % 100)
    roles = sorted({int(tok.value[i]) for i in e.before + e.span + e.after
                    if tok.kind[i] == PROGRAM})  # fmt: skip
    primer = (e.after + [tok.eos_id] + e.before) if infill else e.before
    style, key = tok.read_header(e.header)
    req = GenerationRequest(
        style=style, key=key, meter=meter,
        controls=tuple(tok.measure_controls(body, n_roles_hint=len(roles))),
        roles=tuple(roles), cadence=False, seed=seed, candidates=CANDIDATES,
        primer=tuple(primer),
    )  # fmt: skip
    cands = decode(ckpt, req).candidates
    heard = local_key(tok, e.before, e.after)
    best = max(cands, key=lambda c: preference(tok, c, heard, e.after))
    return [[i for i in c.ids[3:] if i != tok.eos_id] for c in (cands[0], best)]


def _roles(tok: ScoreTokenizer, ids: list[int]) -> list[int]:
    return sorted({int(tok.value[i]) for i in ids if tok.kind[i] == PROGRAM})


def _parts(
    ckpt, tok: ScoreTokenizer, e, written: set[int], given: bool, seed: int, against: float = 0.0
) -> list:
    """CANDIDATES spans (body ids) whose ``written`` roles are written again in the infill
    layout, with the span's other parts ``given`` or written afresh with them; ``against``: the
    penalty on pitches dissonant with the other parts sounding (constraints.Against)."""
    from composer.model.decode import decode

    body = [i for i in e.span if i != tok.eos_id]
    sig = next(i for i in body if tok.kind[i] == TIMESIG)
    roles = _roles(tok, body)
    style, key = tok.read_header(e.header)
    req = GenerationRequest(
        style=style, key=key, meter=(int(tok.value[sig]) // 100, int(tok.value[sig]) % 100),
        controls=tuple(tok.measure_controls(body, n_roles_hint=len(roles))),
        roles=tuple(sorted(written)) if given else tuple(roles), cadence=False, seed=seed,
        candidates=CANDIDATES, primer=tuple(e.after + [tok.eos_id] + e.before),
        kept=given_notes(tok, body, set(roles) - written) if given else (),
        against=sounding_notes(tok, body, set(roles) - written) if against else (),
        against_penalty=against,
    )  # fmt: skip
    return [c.ids[3:] for c in decode(ckpt, req).candidates]


def _against(tok: ScoreTokenizer, e, span: list[int], written: set[int]) -> float:
    """Share of the attacks of ``span``'s ``written`` roles consonant with the corpus span's
    other parts."""
    others = [(t, t + d, p) for t, r, p, d in tok.notes(e.span)[0] if r not in written]
    attacks = [(t, p) for t, r, p, _ in tok.notes(span)[0] if r in written]
    share = consonant_share(attacks, others)
    return 1.0 if share is None else share


def _seams(tok: ScoreTokenizer, exs, spans: list[list[int]]) -> Seams:
    spb = tok.steps_per_beat
    into, out_of, gap_in, gap_out, in_key = [], [], [], [], []
    for e, span in zip(exs, spans, strict=True):
        before, before_len = tok.notes(e.before)
        inside, span_len = tok.notes(span)
        after, _ = tok.notes(e.after)
        melody = min((r for _, r, _, _ in before + inside + after), default=0)
        mel = [[p for _, r, p, _ in part if r == melody] for part in (before, inside, after)]
        if mel[0] and mel[1]:
            into.append(abs(mel[1][0] - mel[0][-1]))
        if mel[1] and mel[2]:
            out_of.append(abs(mel[2][0] - mel[1][-1]))
        if before and inside:
            gap_in.append((before_len - before[-1][0] + inside[0][0]) / spb)
        if inside and after:
            gap_out.append((span_len - inside[-1][0] + after[0][0]) / spb)
        if inside:
            in_key.append(tuple(find_key(pitch_classes(tok, span))) == tok.read_header(e.header)[1])
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return Seams(mean(into), mean(out_of), mean(gap_in), mean(gap_out), mean(in_key), len(exs))
