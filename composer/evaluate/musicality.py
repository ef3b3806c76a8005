"""``composer eval musicality``: does the music sound written by a musician, next to the corpus?

Each request of a battery (``evals/musicality/*.tsv``: a request, a tab, and ``texture=waltz``,
``march`` or ``jig`` where its words name such a dance) is composed end to end once per seed,
and each video with no request; or, given ``scores``, folders composed before (score.mid and
plan.json) are measured as they are. Every piece is measured on its score.mid with
composer.evaluate.musicianship (which defines each figure), and so are pieces of the same
styles from the shipped library, chosen by a seeded shuffle (corpus_figures). Figures pool by
style: the sums of (met, counted) over the pieces; recurrence is the mean per-piece share over
pieces of 16 bars or more, with the share of those pieces that have a phrase return.

Targets, on the generated pieces pooled: complete harmony >= 70% of beats with three parts
sounding, the melody on a chord tone at >= 85% of strong beats, <= 1 parallel fifth or octave
between the outer parts per 100 moves, melody on top and bass at the bottom >= 95% of the time,
every note in its instrument's range, the bass attacking >= 90% of its bars' downbeats, the
stated texture in every piece that states one, recurrence within 25% of the corpus figure of
the same style (per style, and per piece), and a phrase return in every piece of 16 bars or
more.
"""

from __future__ import annotations

import json
import random
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import symusic

from composer.errors import ComposerError
from composer.evaluate.musicianship import (
    LONG,
    TEXTURES,
    Measures,
    Ratio,
    has_texture,
    measure,
    texture_of,
)
from composer.evaluate.requests import read_battery
from composer.outputs import atomic_write_text
from composer.progress import ProgressFn, no_progress

# Pooled ratios: (name in the tables, Measures field, target, whether the target is a ceiling).
RATIOS = (
    ("complete harmony", "complete_harmony", 0.70, False),
    ("melody chord tones", "melody_chord_tones", 0.85, False),
    ("parallels per 100 moves", "outer_parallels", 0.01, True),
    ("melody on top", "melody_on_top", 0.95, False),
    ("bass at bottom", "bass_at_bottom", 0.95, False),
    ("in range", "in_range", 1.00, False),
    ("bass downbeats", "bass_downbeats", 0.90, False),
)  # fmt: skip
RECURRENCE_SPREAD = 0.25  # |generated - corpus| <= this share of the corpus figure


@dataclass
class Figures:
    """One style's figures over its pieces, generated or from the corpus."""

    pieces: int
    ratios: dict[str, Ratio]  # per Measures field: (met, counted) summed over the pieces
    long_pieces: int  # of 16 bars or more
    recurrence: float | None  # the mean share of recurring two-bar windows, over long pieces
    phrase_returns: float | None  # the share of long pieces with a phrase return


def pool(measures: list[Measures]) -> Figures:
    """The figures of a group of pieces: ratios summed, recurrence averaged over long pieces."""
    ratios = {}
    for _, name, _, _ in RATIOS:
        got = [getattr(m, name) for m in measures if getattr(m, name) is not None]
        ratios[name] = (sum(r[0] for r in got), sum(r[1] for r in got))
    long = [m for m in measures if m.recurrence is not None]
    shares = [_share(m.recurrence) for m in long]
    return Figures(
        pieces=len(measures), ratios=ratios, long_pieces=len(long),
        recurrence=sum(shares) / len(shares) if shares else None,
        phrase_returns=sum(m.phrase_returns > 0 for m in long) / len(long) if long else None,
    )  # fmt: skip


def corpus_figures(
    styles, per_style: int = 40, seed: int = 0, progress: ProgressFn = no_progress
) -> dict[str, Figures]:
    """Per style: the figures of up to ``per_style`` of the shipped library's pieces of it,
    chosen by a shuffle seeded with ``seed`` (ranges and textures are not measured: a corpus
    piece's programs are role ids and it states no texture)."""
    from composer.paths import DEFAULT_LIBRARY
    from composer.retrieve.library import Library, load_piece

    pieces = Library.open(DEFAULT_LIBRARY).pieces
    chosen = {}
    for style in styles:
        metas = [p for p in pieces if p.style == style]
        random.Random(seed).shuffle(metas)
        chosen[style] = metas[:per_style]
    total, done = sum(map(len, chosen.values())), 0
    out = {}
    for style, metas in chosen.items():
        measured = []
        for meta in metas:
            progress("corpus", done, total)
            try:
                measured.append(measure(load_piece(meta).score, ranges=False))
            except ComposerError:  # the piece's file is gone since the library was built
                pass
            done += 1
        out[style] = pool(measured)
    progress("corpus", total, total)
    return out


@dataclass
class Piece:
    name: str  # the request, or the video's or folder's name
    style: str
    seed: int
    folder: str
    texture: str | None  # the texture the request states
    texture_bars: Ratio | None  # (bars matching it, bars measured)
    measures: Measures


def measure_folder(folder: str | Path, name: str | None = None,
                   textures: dict[str, str | None] | None = None) -> Piece:  # fmt: skip
    """Measure ``folder``/score.mid; its style, seed and (without ``name``) request come from
    plan.json, its stated texture from ``textures`` (per request)."""
    folder = Path(folder)
    score = symusic.Score(str(folder / "score.mid"))
    record = json.loads((folder / "plan.json").read_text())
    name = name or record.get("prompt") or Path(record.get("video") or folder).name
    texture = (textures or {}).get(name)
    return Piece(
        name=name, style=record["plan"]["style"]["value"], seed=int(record.get("seed", 0)),
        folder=str(folder), texture=texture,
        texture_bars=texture_of(score, texture) if texture else None,
        measures=measure(score),
    )  # fmt: skip


@dataclass
class Target:
    name: str
    figure: str
    goal: str
    met: bool


@dataclass
class MusicalityReport:
    command: str
    pieces: list[Piece] = field(default_factory=list)
    generated: dict[str, Figures] = field(default_factory=dict)  # per style
    corpus: dict[str, Figures] = field(default_factory=dict)

    def targets(self) -> list[Target]:
        overall = pool([p.measures for p in self.pieces])
        out = []
        for label, name, goal, ceiling in RATIOS:
            r = overall.ratios[name]
            reached = r[1] > 0 and (r[0] <= goal * r[1] if ceiling else r[0] >= goal * r[1])
            figure, bound = (_per100(r), f"<= {goal * 100:g}") if ceiling else (
                _pct(r), f">= {goal:.0%}")  # fmt: skip
            out.append(Target(label, figure, bound, reached))
        stated = [p for p in self.pieces if p.texture]
        met = sum(has_texture(p.texture_bars) for p in stated)
        out.append(Target("stated textures", f"{met}/{len(stated)} pieces", "all",
                          met == len(stated)))  # fmt: skip
        both = {s: (f.recurrence, self._corpus_recurrence(s)) for s, f in self.generated.items()}
        styles = [s for s, (gen, corpus) in both.items() if None not in (gen, corpus)]
        near = sum(_near(*both[s]) for s in styles)
        out.append(Target("recurrence by style", f"{near}/{len(styles)} styles",
                          "all within 25% of the corpus", near == len(styles)))  # fmt: skip
        long = [p for p in self.pieces if p.measures.recurrence is not None
                and self._corpus_recurrence(p.style) is not None]  # fmt: skip
        near = sum(_near(_share(p.measures.recurrence), self._corpus_recurrence(p.style))
                   for p in long)  # fmt: skip
        out.append(Target("recurrence by piece", f"{near}/{len(long)} pieces",
                          "all within 25% of the corpus", near == len(long)))  # fmt: skip
        long = [p for p in self.pieces if p.measures.phrase_returns is not None]
        met = sum(p.measures.phrase_returns > 0 for p in long)
        out.append(Target(f"phrase returns (>= {LONG} bars)", f"{met}/{len(long)} pieces", "all",
                          met == len(long)))  # fmt: skip
        return out

    def _corpus_recurrence(self, style: str) -> float | None:
        figures = self.corpus.get(style)
        return figures.recurrence if figures else None

    def table(self) -> str:
        head = (f"{'piece':40s} {'style':11s} {'seed':>4s} {'bars':>4s} {'harmony':>7s} "
                f"{'tones':>6s} {'par%':>5s} {'top':>5s} {'bottom':>6s} {'range':>6s} "
                f"{'downb':>6s} {'texture':>12s} {'recur':>6s} {'phr':>4s}")  # fmt: skip
        lines = [head]
        for p in self.pieces:
            m = p.measures
            texture = "-" if not p.texture else (
                f"{p.texture} {'ok' if has_texture(p.texture_bars) else 'x'}"
                f"{_short(p.texture_bars)}")  # fmt: skip
            lines.append(
                f"{p.name[:40]:40s} {p.style:11s} {p.seed:4d} {m.bars:4d} "
                f"{_short(m.complete_harmony):>7s} {_short(m.melody_chord_tones):>6s} "
                f"{_short(m.outer_parallels, True):>5s} {_short(m.melody_on_top):>5s} "
                f"{_short(m.bass_at_bottom):>6s} {_short(m.in_range):>6s} "
                f"{_short(m.bass_downbeats):>6s} {texture:>12s} {_short(m.recurrence):>6s} "
                f"{'-' if m.phrase_returns is None else m.phrase_returns:>4}"
            )
        lines += ["", "by style: generated | corpus"]
        for style, gen in self.generated.items():
            corpus = self.corpus.get(style)
            lines.append(f"{style}: {gen.pieces} generated, "
                         f"{corpus.pieces if corpus else 0} corpus pieces")  # fmt: skip
            for label, name, _, ceiling in RATIOS:
                show = _per100 if ceiling else _pct
                theirs = show(corpus.ratios[name]) if corpus and name != "in_range" else "-"
                lines.append(f"  {label:24s} {show(gen.ratios[name]):>20s} | {theirs}")
            for label, attr in (("recurrence", "recurrence"), ("phrase returns", "phrase_returns")):
                theirs = _frac(getattr(corpus, attr)) if corpus else "-"
                lines.append(f"  {label:24s} {_frac(getattr(gen, attr)):>20s} | {theirs}"
                             f"   ({gen.long_pieces} | {corpus.long_pieces if corpus else 0}"
                             f" pieces of >= {LONG} bars)")  # fmt: skip
        lines += ["", "overall, against the targets:"]
        for t in self.targets():
            lines.append(f"  {t.name:28s} {t.figure:>22s}  target {t.goal:30s} "
                         f"{'ok' if t.met else 'x'}")  # fmt: skip
        return "\n".join(lines)


def eval_musicality(
    battery: str | Path | None = None,
    *,
    videos: Sequence[str | Path] = (),
    seeds: Sequence[int] = (0,),
    duration: float = 40.0,
    model: str | Path | None = None,
    scores: Sequence[str | Path] = (),
    out: str | Path | None = None,
    corpus_per_style: int = 40,
    command: str | None = None,
    progress: ProgressFn = no_progress,
) -> MusicalityReport:
    """Compose each request of ``battery`` once per seed (and each video, seed 0) into ``out``
    (or a temporary folder), or with ``scores`` measure those output folders instead (the
    battery, if given too, names their textures); measure every piece against the corpus of
    its style. ``command`` heads the report (default: the equivalent ``composer`` command)."""
    from composer.pipeline import compose

    lines = read_battery(battery) if battery else []
    if not (lines or videos or scores):
        raise ComposerError(None, "give a request battery, videos or score folders to measure")
    stated = {r: a.get("texture", [None])[0] for r, a in lines}
    if unknown := {t for t in stated.values() if t is not None} - set(TEXTURES):
        raise ComposerError(battery, f"unknown textures {sorted(unknown)} (say one of "
                                     f"{', '.join(TEXTURES)})")  # fmt: skip
    report = MusicalityReport(command or _command(battery, videos, seeds, duration, model,
                                                  scores, corpus_per_style))  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(out) if out else Path(scratch)
        if scores:
            for i, folder in enumerate(scores):
                progress("measure", i, len(scores))
                report.pieces.append(measure_folder(folder, textures=stated))
        else:
            jobs = [(r, seed, None) for r, _ in lines for seed in seeds] + [
                (Path(v).name, 0, Path(v)) for v in videos
            ]
            for i, (request, seed, video) in enumerate(jobs):
                progress("eval musicality", i, len(jobs))
                folder = root / (f"{i:03d}-seed{seed}" if video is None else f"video-{i:03d}")
                compose(video, "" if video else request, folder, seed=seed, model=model,
                        duration=None if video else duration, force=True)  # fmt: skip
                report.pieces.append(measure_folder(folder, request, stated))
            progress("eval musicality", len(jobs), len(jobs))
    styles = list(dict.fromkeys(p.style for p in report.pieces))
    report.generated = {s: pool([p.measures for p in report.pieces if p.style == s])
                        for s in styles}  # fmt: skip
    if corpus_per_style > 0:
        report.corpus = corpus_figures(styles, corpus_per_style, progress=progress)
    if out is not None:
        write_report(report, Path(out))
    return report


def write_report(report: MusicalityReport, out: Path) -> None:
    """musicality.txt (headed by the command), musicality.json and musicality.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "musicality.txt", f"$ {report.command}\n{report.table()}\n")
    data = {**asdict(report), "targets": [asdict(t) for t in report.targets()]}
    atomic_write_text(out / "musicality.json", json.dumps(data, indent=1))
    plot(report, out / "musicality.png")


def plot(report: MusicalityReport, path: Path) -> None:
    """One panel per figure: per style, the generated pieces beside the corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [(label, name, goal * 100) for label, name, goal, _ in RATIOS]
    panels += [("recurrence", "recurrence", None), ("phrase returns", "phrase_returns", None)]
    styles = list(report.generated)
    fig, axes = plt.subplots(3, 3, figsize=(13, 10))
    x = np.arange(len(styles))
    for ax, (label, name, goal) in zip(axes.flat, panels, strict=True):
        for k, (who, figures) in enumerate((("generated", report.generated),
                                            ("corpus", report.corpus))):  # fmt: skip
            ys = [_value(figures.get(s), name) for s in styles]
            ax.bar(x + (k - 0.5) * 0.4, [np.nan if y is None else y for y in ys], 0.4,
                   label=who)  # fmt: skip
        if goal is not None:
            ax.axhline(goal, color="k", linestyle="--", linewidth=0.8)
        ax.set_title(label if name == "outer_parallels" else f"{label} (%)")
        ax.set_xticks(x, styles, rotation=30, fontsize=8)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _value(figures: Figures | None, name: str) -> float | None:
    """A figure in percent (parallels per 100 moves), or None where there is none."""
    if figures is None:
        return None
    if name in ("recurrence", "phrase_returns"):
        v = getattr(figures, name)
        return None if v is None else 100 * v
    r = figures.ratios[name]
    return 100 * r[0] / r[1] if r[1] else None


def _share(r: Ratio) -> float:
    return r[0] / r[1] if r[1] else 0.0


def _near(generated: float, corpus: float) -> bool:
    return abs(generated - corpus) <= RECURRENCE_SPREAD * corpus


def _pct(r: Ratio) -> str:
    return f"{r[0] / r[1]:.0%} ({r[0]}/{r[1]})" if r[1] else "-"


def _per100(r: Ratio) -> str:
    return f"{100 * r[0] / r[1]:.1f} ({r[0]}/{r[1]})" if r[1] else "-"


def _short(r: Ratio | None, per100: bool = False) -> str:
    if r is None or not r[1]:
        return "-"
    return f"{100 * r[0] / r[1]:.1f}" if per100 else f"{r[0] / r[1]:.0%}"


def _frac(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _command(battery, videos, seeds, duration, model, scores, corpus_per_style) -> str:
    """The ``composer eval musicality`` command that does what these arguments do."""
    words = ["composer", "eval", "musicality"] + ([str(battery)] if battery else [])
    if videos:
        words += ["--videos", *map(str, videos)]
    if scores:
        words += ["--scores", *map(str, scores)]
    else:
        words += ["--seeds", *map(str, seeds), "--duration", f"{duration:g}"]
    if model:
        words += ["--model", str(model)]
    return shlex.join(words + ["--corpus-per-style", str(corpus_per_style)])
