"""``composer eval styles``: does a style adapter make the music sound like its style?

A style classifier (multinomial logistic regression over symbolic features, trained on 8-bar
excerpts of the held-out pieces: evals/style_classifier/) names the style of each generated
piece. Per style, the same plans (held-out pieces' opening controls and meter, a seeded random
key) are generated with the style's adapter merged and with the base alone; the table gives
how often the classifier hears the requested style in each case.

With 20 pieces per cell one piece is 5 points, so the table also gives each share's 95%
interval and the paired comparison: the same plan and seed decoded both ways, the pieces heard
as the style with the adapter only against those heard with the base only, and the exact
two-sided sign test (McNemar's) on those two counts.

Beside them, the "corpus" column says how often the classifier hears the style in real music
it never saw: the openings of the style's training-split pieces. A generator that wrote exactly
like its corpus would score about that, so it tells a generator's miss from the judge's limit
(a style with few held-out pieces gives the classifier little to learn it from).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from composer.errors import ComposerError
from composer.evaluate.metrics import measure, notes_of
from composer.outputs import atomic_write_text
from composer.paths import DEFAULT_MODEL, STYLE_CLASSIFIER
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER
from composer.train.data import TokenCache
from composer.types import BarControls

TARGET = 0.80  # agreement with the requested style, with the adapter


def excerpt_features(tok: ScoreTokenizer, ids: list[int] | np.ndarray) -> np.ndarray:
    """(FEATURE_DIM + 4,) float32: the retrieval features of the decoded excerpt and its four
    MusPy metrics. The header (style and key tokens) is never read: only the notes are."""
    from composer.retrieve.features import symbolic_features

    body = [int(i) for i in ids]
    score = tok.decode(body)
    metrics = measure(notes_of(tok, body))
    return np.concatenate(
        [symbolic_features(score), np.array(list(metrics.values()), np.float32)]
    ).astype(np.float32)


@dataclass(frozen=True)
class StyleClassifier:
    """Standardised features -> softmax over ``styles``. Plain numbers, read with numpy."""

    styles: tuple[str, ...]
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (C, F)
    intercept: np.ndarray  # (C,)
    info: dict = field(default_factory=dict, compare=False)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities for (N, F) features."""
        z = (np.atleast_2d(features) - self.mean) / self.scale
        logits = z @ self.coef.T + self.intercept
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[str]:
        return [self.styles[i] for i in self.probabilities(features).argmax(1)]

    def save(self, path: Path) -> None:
        data = {
            "styles": list(self.styles),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "info": self.info,
        }
        atomic_write_text(path, json.dumps(data) + "\n")

    @classmethod
    def load(cls, path: Path = STYLE_CLASSIFIER) -> StyleClassifier:
        try:
            d = json.loads(Path(path).read_text())
            out = cls(
                tuple(d["styles"]),
                np.asarray(d["mean"], np.float64),
                np.asarray(d["scale"], np.float64),
                np.asarray(d["coef"], np.float64),
                np.asarray(d["intercept"], np.float64),
                d.get("info", {}),
            )
        except FileNotFoundError:
            raise ComposerError(
                path, "no style classifier (train it: evals/style_classifier/train.py)"
            ) from None
        except (ValueError, KeyError, TypeError) as e:
            raise ComposerError(path, f"corrupt style classifier ({e})") from None
        c, f = len(out.styles), len(out.mean)
        if out.coef.shape != (c, f) or out.intercept.shape != (c,) or out.scale.shape != (f,):
            raise ComposerError(path, "corrupt style classifier (shapes do not agree)")
        return out


def held_out_excerpts(
    cache: TokenCache,
    split: str,
    bars: int = 8,
    per_piece: int = 4,
    per_style: int = 32,
    seed: int = 0,
) -> list[tuple[str, str, np.ndarray]]:
    """(style, piece id, ids) excerpts of ``bars`` bars from each piece of ``split``, at random
    bar lines (seeded), header included: up to ``per_piece`` per piece, more where a style has
    so few pieces that it would give fewer than ``per_style`` (medieval: 2 long pieces)."""
    rng = np.random.default_rng(seed)
    pieces = cache.split(split)
    count = Counter(p.style for p in pieces)
    out = []
    for p in pieces:
        ids = cache.ids(p)
        starts = [b for i, b in enumerate(p.bars) if i + bars <= len(p.bars)]
        if not starts:
            continue
        n = max(per_piece, -(-per_style // count[p.style]))
        for s in sorted(rng.choice(starts, min(n, len(starts)), replace=False)):
            i = p.bars.index(int(s))
            end = p.bars[i + bars] if i + bars < len(p.bars) else p.length
            out.append((p.style, p.id, np.concatenate([ids[:HEADER], ids[s:end]])))
    return out


def opening_plan(tok: ScoreTokenizer, ids: np.ndarray, bars: int):
    """(meter, controls) of a piece's first ``bars`` bars, or None when its meter changes
    inside them (or is unknown)."""
    info = tok.bars(ids[HEADER:].tolist())[:bars]
    if len(info) < bars or info[0]["meter"] is None:
        return None
    if any(b["meter"] not in (None, info[0]["meter"]) for b in info):
        return None
    controls = tuple(
        BarControls(intensity=b["intensity"] or 0, hit=b["hit"], section=b["section"]) for b in info
    )
    return info[0]["meter"], controls


def corpus_agreement(
    clf: StyleClassifier, tok: ScoreTokenizer, cache: TokenCache, style: str, bars: int,
    pieces: int = 60, seed: int = 0,
) -> float:  # fmt: skip
    """Share of the openings (first ``bars`` bars) of up to ``pieces`` of ``style``'s
    training-split pieces, drawn with ``seed``, that ``clf`` hears as ``style``. The classifier
    is fitted on the held-out splits only, so this is real music it never saw."""
    train = [p for p in cache.split("train") if p.style == style and len(p.bars) >= bars]
    rng = np.random.default_rng(seed)
    chosen = [train[i] for i in sorted(rng.permutation(len(train))[:pieces])]
    heard = []
    for p in chosen:
        ids = cache.ids(p)
        end = p.bars[bars] if bars < len(p.bars) else p.length
        excerpt = np.concatenate([ids[:HEADER], ids[p.bars[0] : end]])
        heard.append(clf.predict(excerpt_features(tok, excerpt))[0] == style)
    return float(np.mean(heard)) if heard else float("nan")


@dataclass
class StyleAgreement:
    style: str
    adapter: str
    pieces: int
    with_adapter: float  # share classified as ``style``
    without_adapter: float
    heard_with: dict[str, int]  # classifier's answers with the adapter
    heard_without: dict[str, int]
    corpus: float  # share of the style's training-split openings heard as the style
    # Paired pieces (same plan and seed) heard as the style with the adapter only, base only.
    only_with: int = 0
    only_without: int = 0
    guidance: dict | None = None  # the adapter's StyleContrast, when it decodes with one
    guided_base: float | None = None  # the share for the base decoded with that guidance

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of ``with_adapter``."""
        return wilson(round(self.with_adapter * self.pieces), self.pieces)

    @property
    def paired_p(self) -> float:
        """Exact two-sided sign test on the discordant pairs (McNemar's test)."""
        n = self.only_with + self.only_without
        return binomtest(self.only_with, n).pvalue if n else 1.0


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share ``k / n`` (95% for z = 1.96)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(mid - half, 0.0)), float(min(mid + half, 1.0))


@dataclass
class StylesEval:
    model: str
    bars: int
    rows: list[StyleAgreement]
    classifier: dict  # the classifier's own held-out figures

    def table(self) -> str:
        lines = [
            f"model {self.model}: {self.bars}-bar pieces; classifier agreement with the "
            f"requested style (target >= {TARGET:.0%} with the adapter, and above without)",
            f"classifier: {self.classifier.get('summary', '')}",
            "",
            f"{'style':12s} {'n':>3s} {'adapter':>8s} {'95% interval':>13s} {'base':>6s} "
            f"{'corpus':>7s} {'+/-':>7s} {'p':>6s} {'guidance':>16s} {'base+g':>7s}"
            "   heard with adapter / base",
        ]
        for r in self.rows:
            mark = "" if r.with_adapter >= TARGET and r.with_adapter > r.without_adapter else "!"
            lo, hi = r.interval
            g = f"{r.guidance['scale']:g} from {r.guidance['against']}" if r.guidance else "-"
            gb = "-" if r.guided_base is None else f"{r.guided_base:.0%}"
            lines.append(
                f"{r.style:12s} {r.pieces:3d} {r.with_adapter:8.0%} {f'{lo:.0%}-{hi:.0%}':>13s}"
                f" {r.without_adapter:6.0%}{mark:1s}{r.corpus:6.0%}"
                f" {f'{r.only_with}/{r.only_without}':>7s} {r.paired_p:6.3f}"
                f" {g:>16s} {gb:>7s}"
                f"  {_counts(r.heard_with)} / {_counts(r.heard_without)}"
            )
        if self.rows:
            w = float(np.mean([r.with_adapter for r in self.rows]))
            b = float(np.mean([r.without_adapter for r in self.rows]))
            c = float(np.mean([r.corpus for r in self.rows]))
            lines.append(
                f"{'mean':12s} {'':3s} {w:8.0%} {'':13s} {b:6.0%} {c:7.0%}   ('!' marks a miss)"
            )
            lines.append(
                "+/-: paired pieces (same plan and seed) heard as the style with the adapter "
                "only / with the base only; p: exact sign test on them"
            )
            lines.append(
                "guidance: the adapter decodes guided away from that style at that scale; "
                "base+g: the base decoded with the same guidance"
            )
        return "\n".join(lines)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = {"model": self.model, "bars": self.bars, "classifier": self.classifier,
                "rows": [asdict(r) for r in self.rows]}  # fmt: skip
        atomic_write_text(folder / "styles.json", json.dumps(data, indent=2) + "\n")
        atomic_write_text(folder / "styles.txt", self.table() + "\n")


def _counts(heard: dict[str, int]) -> str:
    return ",".join(f"{k}:{v}" for k, v in sorted(heard.items(), key=lambda kv: -kv[1]))


def eval_styles(
    model: str | Path = DEFAULT_MODEL,
    cache: str | Path | None = None,
    per_style: int = 100,
    bars: int = 8,
    seed: int = 0,
    candidates: int = 4,
    classifier: Path = STYLE_CLASSIFIER,
    out: Path | None = None,
    progress: ProgressFn = no_progress,
) -> StylesEval:
    """Generate ``per_style`` pieces per adapted style with and without its adapter and
    classify them (see the module docstring)."""
    from composer.model.adapters import list_adapters, style_contrast
    from composer.model.checkpoint import cached_checkpoint
    from composer.model.decode import decode
    from composer.types import GenerationRequest

    clf = StyleClassifier.load(classifier)
    base = cached_checkpoint(model)
    tok = base.tokenizer
    data = TokenCache.load(cache, tok)
    data.check_trained_with(base.info, model)
    styles = [s for s in clf.styles if s in list_adapters(model)]
    if not styles:
        raise ComposerError(
            Path(model), "no adapter for any style the classifier knows (composer train --adapter)"
        )
    rng = np.random.default_rng(seed)
    keys = [(pc, "major") for pc in range(12)] + [(pc, "minor") for pc in range(12)]
    contrasts = {s: style_contrast(model, s) for s in styles}
    total = sum(per_style * (3 if contrasts[s] else 2) for s in styles)
    done = 0
    rows = []
    for style in styles:
        # The adapter as it decodes (with its guidance, if any), the base alone, and the base
        # with the same guidance: what the LoRA weights add beyond the guidance.
        arms = {"adapter": (style, contrasts[style]), "base": (None, None)}
        if contrasts[style]:
            arms["guided"] = (None, contrasts[style])
        held = [p for p in data.pieces if p.style == style and p.split in ("test", "val")]
        plans = [pl for p in held if (pl := opening_plan(tok, data.ids(p), bars)) is not None]
        if not plans:
            log.warning("no held-out %s piece has %d bars in one meter: skipped", style, bars)
            continue
        heard: dict[str, list[str]] = {arm: [] for arm in arms}
        for i in range(per_style):
            meter, controls = plans[i % len(plans)]
            req = GenerationRequest(
                style=style, key=keys[int(rng.integers(len(keys)))], meter=meter,
                controls=controls, seed=int(rng.integers(2**31)), candidates=candidates,
            )  # fmt: skip
            for arm, (adapter, contrast) in arms.items():
                ckpt = cached_checkpoint(model, adapter)
                ids = decode(ckpt, dataclasses.replace(req, contrast=contrast)).best.ids
                heard[arm].append(clf.predict(excerpt_features(tok, ids))[0])
                done += 1
                progress("eval styles", done, total)
        with_, base = heard["adapter"], heard["base"]
        guided = heard.get("guided")
        rows.append(
            StyleAgreement(
                style, style, per_style,
                float(np.mean([h == style for h in with_])),
                float(np.mean([h == style for h in base])),
                dict(Counter(with_)), dict(Counter(base)),
                corpus_agreement(clf, tok, data, style, bars, seed=seed),
                sum(a == style != b for a, b in zip(with_, base, strict=True)),
                sum(b == style != a for a, b in zip(with_, base, strict=True)),
                guidance=asdict(contrasts[style]) if contrasts[style] else None,
                guided_base=float(np.mean([h == style for h in guided])) if guided else None,
            )
        )  # fmt: skip
        log.info("%s: %.0f%% with adapter, %.0f%% without, %.0f%% of its corpus", style,
                 100 * rows[-1].with_adapter, 100 * rows[-1].without_adapter,
                 100 * rows[-1].corpus)  # fmt: skip
    report = StylesEval(str(model), bars, rows, clf.info)
    if out:
        report.save(out)
    return report
