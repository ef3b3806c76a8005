"""``composer eval priming``: is music primed by a reference closer to it than unprimed music?

For each of N held-out (test split) pieces, drawn round-robin over styles, the request is the
plan that piece would give (its style, its meter, its first bars' controls) in a key drawn at
random (``plans_from_held_out``, as ``composer eval generate`` uses). It is generated twice with
the same seed: as is, and primed by the piece itself (``composer.retrieve.prime``). Measured:
the feature distance (``composer.retrieve.features``, key-relative, so the plan's key does not
count against either) from each output to the whole reference piece.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from composer.evaluate.copies import REFERENCES_FILE
from composer.evaluate.generation import held_out_openings, plans_from_held_out
from composer.model.checkpoint import cached_checkpoint
from composer.model.decode import decode
from composer.model.export import write_midi
from composer.model.prime import PRIMER_BARS, plan_priming, reference_from_ids
from composer.music.keys import key_name
from composer.outputs import atomic_write_text
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, log, no_progress
from composer.retrieve.features import feature_distance, symbolic_features
from composer.train.data import TokenCache


@dataclass
class PrimingRow:
    reference: str
    style: str
    key: str  # the plan's key
    meter: str
    priming: str  # what priming did
    primed: float  # feature distance from the primed output to the reference
    unprimed: float


@dataclass
class PrimingEval:
    model: str
    bars: int
    primer_bars: int
    seed: int
    rows: list[PrimingRow]

    def table(self) -> str:
        """Per reference both distances; then the means, the paired difference and wins."""
        lines = [
            f"model {self.model}: {len(self.rows)} held-out references, {self.bars} bars each, "
            f"primer {self.primer_bars} bars, seed {self.seed}",
            "feature distance to the reference (0 same .. 1 nothing alike); lower is closer",
            "",
            f"{'reference':34s} {'style':11s} {'key':4s} {'meter':5s} {'primed':>7s} "
            f"{'unprimed':>8s}",
        ]
        for r in self.rows:
            lines.append(
                f"{r.reference[:34]:34s} {r.style:11s} {r.key:4s} {r.meter:5s} "
                f"{r.primed:7.3f} {r.unprimed:8.3f}"
            )
        if not self.rows:
            return "\n".join(lines)
        p = np.array([r.primed for r in self.rows])
        u = np.array([r.unprimed for r in self.rows])
        d = u - p
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        lines += [
            "",
            f"mean distance: primed {p.mean():.4f}, unprimed {u.mean():.4f}",
            f"paired difference (unprimed - primed): {d.mean():+.4f} +- {se:.4f} (std. error)",
            f"primed closer for {int((d > 0).sum())}/{len(d)} references",
        ]
        for style in sorted({r.style for r in self.rows}):
            sel = np.array([r.style == style for r in self.rows])
            lines.append(
                f"  {style:11s} n={int(sel.sum()):2d}  primed {p[sel].mean():.4f}  "
                f"unprimed {u[sel].mean():.4f}"
            )
        verdict = "PASS" if p.mean() < u.mean() else "FAIL"
        lines.append(f"primed closer than unprimed on average: {verdict}")
        return "\n".join(lines)


def eval_priming(
    model: str | Path = DEFAULT_MODEL,
    cache: str | Path | None = None,
    pieces: int = 24,
    bars: int = 8,
    primer_bars: int = PRIMER_BARS,
    seed: int = 0,
    midi_dir: Path | None = None,
    progress: ProgressFn = no_progress,
) -> PrimingEval:
    """Generate with and without priming for ``pieces`` held-out references (module docstring).

    With ``midi_dir``, both outputs of each reference are written there as MIDI files, with
    ``references.json`` naming each file's reference for ``composer eval copies``.
    """
    ckpt = cached_checkpoint(model)
    tok = ckpt.tokenizer
    data = TokenCache.load(cache, tok)
    data.check_trained_with(ckpt.info, model)
    entries = {p.id: p for p in data.split("test")}
    plans = plans_from_held_out(held_out_openings(data, tok, bars), pieces, seed)
    rows: list[PrimingRow] = []
    refs: dict[str, str] = {}
    for i, (opening, req) in enumerate(plans):
        progress("eval", i, len(plans))
        ref_id, style = opening.piece, opening.style
        ref = reference_from_ids(ref_id, data.ids(entries[ref_id]), tok)
        target = symbolic_features(tok.decode(list(ref.ids)))
        how = plan_priming(req, ref, tok, primer_bars)
        dist = {}
        for label, r in (("primed", how.apply(req)), ("unprimed", req)):
            ids = decode(ckpt, r).best.ids
            dist[label] = feature_distance(symbolic_features(tok.decode(ids)), target)
            if midi_dir is not None:
                name = f"{i:03d}-{style}-{label}.mid"
                write_midi(tok, ids, midi_dir / name, tempo=100.0, key=req.key, overwrite=True)
                refs[name] = ref_id
        rows.append(
            PrimingRow(
                ref_id,
                style,
                key_name(*req.key),
                f"{req.meter[0]}/{req.meter[1]}",
                how.describe(),
                dist["primed"],
                dist["unprimed"],
            )
        )
        log.info("%s: primed %.3f unprimed %.3f", ref_id, dist["primed"], dist["unprimed"])
    progress("eval", len(plans), len(plans))
    if midi_dir is not None:
        atomic_write_text(midi_dir / REFERENCES_FILE, json.dumps(refs, indent=1) + "\n")
        atomic_write_text(
            midi_dir / "priming.json", json.dumps([asdict(r) for r in rows], indent=1) + "\n"
        )
    return PrimingEval(str(model), bars, primer_bars, seed, rows)
