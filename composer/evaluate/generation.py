"""``composer eval generate``: generated pieces against the held-out corpus, style by style.

Each request is the plan a real held-out piece would give: its style, its meter and its first
bars' controls (intensity, hits, sections), in a key drawn at random from all 24; the styles
take equal shares of the pieces. The piece's own opening is the reference for the style
metrics, so generated and real music are compared over the same bars and controls: the
intensity controls carry note density, so a paired reference cancels which openings happened
to be drawn, which a mean over the whole held-out corpus would not. That mean (every held-out
opening of the style, each once) is printed beside it, to show how typical the draw was.
Checked per piece: it decodes to a MIDI file, the bars and meter are exactly as asked, and
music21's key analysis finds the requested key.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import symusic

from composer.evaluate.metrics import METRICS, Notes, measure, notes_of
from composer.model.checkpoint import load_checkpoint
from composer.model.decode import decode
from composer.model.export import write_midi
from composer.music.keys import key_name
from composer.outputs import atomic_path, atomic_write_text
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER
from composer.train.data import TokenCache
from composer.types import BarControls, GenerationRequest

TOLERANCE = 0.15  # style metrics: relative distance to the held-out corpus allowed
KEY_TARGET = 0.90
# Relative distances are taken against at least this much of a metric: the empty-beat rate of
# held-out openings with no empty beat at all (piano's one test piece) is 0, and one empty
# beat in a hundred would otherwise be an infinite miss. One beat in 16 is the resolution the
# tolerance can mean for a rate.
FLOOR = {"empty_beat_rate": 1 / 16}


@dataclass
class PieceResult:
    reference: str  # held-out piece id whose plan was used
    style: str
    key: str
    meter: str
    bars: int
    decoded: bool
    bars_exact: bool
    key_found: str
    key_match: bool
    metrics: dict[str, float]
    reference_metrics: dict[str, float]
    error: str = ""


@dataclass
class StyleRow:
    style: str
    pieces: int
    generated: dict[str, float]  # mean of each metric
    reference: dict[str, float]  # mean over the openings whose plans were drawn
    corpus: dict[str, float] = field(default_factory=dict)  # mean over every held-out opening
    held_out: int = 0  # how many held-out openings ``corpus`` averages

    def distance(self, metric: str) -> float:
        """Relative distance of the generated mean from the held-out mean (see FLOOR)."""
        ref = self.reference[metric]
        return abs(self.generated[metric] - ref) / max(abs(ref), FLOOR.get(metric, 1e-9))


@dataclass
class GenerationEval:
    model: str
    pieces: list[PieceResult]
    styles: list[StyleRow] = field(default_factory=list)
    tokens_per_second: float = 0.0

    def rate(self, attr: str) -> float:
        return float(np.mean([getattr(p, attr) for p in self.pieces])) if self.pieces else 0.0

    def table(self) -> str:
        """The acceptance table: piece-level checks, then one row per style."""
        n = len(self.pieces)
        lines = [
            f"model {self.model}: {n} pieces, {self.tokens_per_second:.0f} tokens/s",
            f"  decode            {self.rate('decoded'):7.1%}  (target 100%)",
            f"  bars and meter    {self.rate('bars_exact'):7.1%}  (target 100%)",
            f"  music21 key       {self.rate('key_match'):7.1%}  (target >= {KEY_TARGET:.0%})",
            "",
            f"{'style':12s} {'n':>3s}  "
            + "  ".join(f"{m:>26s}" for m in METRICS)
            + "\n"
            + f"{'':12s} {'':>3s}  "
            + "  ".join(f"{'gen / held-out (dist)':>26s}" for _ in METRICS),
        ]
        for row in self.styles:
            cells = []
            for m in METRICS:
                d = row.distance(m)
                mark = " " if d <= TOLERANCE else "!"
                cells.append(
                    f"{row.generated[m]:7.3f} / {row.reference[m]:6.3f} ({d:5.1%}){mark}".rjust(26)
                )
            lines.append(f"{row.style:12s} {row.pieces:3d}  " + "  ".join(cells))
            corpus = "  ".join(f"{row.corpus[m]:17.3f}".ljust(26) for m in METRICS)
            lines.append(f"{'all ' + str(row.held_out):>16s}  {corpus}".rstrip())
        within = sum(r.distance(m) <= TOLERANCE for r in self.styles for m in METRICS)
        lines.append(
            f"style metrics within {TOLERANCE:.0%} of held-out: {within}/"
            f"{len(self.styles) * len(METRICS)} ('!' marks the others; 'all N': the mean over "
            "every one of the style's N held-out openings)"
        )
        return "\n".join(lines)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "model": self.model,
            "tokens_per_second": self.tokens_per_second,
            "styles": [asdict(r) for r in self.styles],
            "pieces": [asdict(p) for p in self.pieces],
        }
        atomic_write_text(folder / "generation.json", json.dumps(data, indent=2))
        atomic_write_text(folder / "generation.txt", self.table() + "\n")
        _plot(self.styles, folder / "generation.png")


@dataclass(frozen=True)
class Opening:
    """A held-out piece's first bars in one meter, with the controls a plan for them carries."""

    piece: str  # piece id
    style: str
    ids: np.ndarray  # the opening's token ids (header included)
    meter: tuple[int, int]
    controls: tuple[BarControls, ...]


def held_out_openings(
    cache: TokenCache, tok: ScoreTokenizer, bars: int
) -> dict[str, list[Opening]]:
    """Every test piece's opening of up to ``bars`` bars (at least 4, in its first meter), by
    style; pieces without one are left out."""
    by_style: dict[str, list[Opening]] = {}
    for piece in cache.split("test"):
        opening = _opening(cache.ids(piece), tok, piece, bars)
        if opening is not None:
            by_style.setdefault(piece.style, []).append(Opening(piece.id, piece.style, *opening))
    return by_style


def plans_from_held_out(
    openings: dict[str, list[Opening]], n: int, seed: int = 0
) -> list[tuple[Opening, GenerationRequest]]:
    """``n`` (opening, request) pairs drawn round-robin over styles, so every style gets an
    equal share. A style with fewer held-out pieces than its share (piano has one) reuses them
    in other keys and seeds: its figures then average several generations rather than
    resting on one or two."""
    rng = np.random.default_rng(seed)
    shuffled = {}
    for style, items in openings.items():  # insertion order: the draws depend on it
        shuffled[style] = list(items)
        rng.shuffle(shuffled[style])
    keys = [(pc, "major") for pc in range(12)] + [(pc, "minor") for pc in range(12)]
    out = []
    for i in range(n if shuffled else 0):
        style = sorted(shuffled)[i % len(shuffled)]
        items = shuffled[style]
        o = items[(i // len(shuffled)) % len(items)]
        key = keys[int(rng.integers(len(keys)))]
        req = GenerationRequest(
            style=style, key=key, meter=o.meter, controls=o.controls, seed=int(rng.integers(2**31))
        )
        out.append((o, req))
    return out


def _opening(ids: np.ndarray, tok: ScoreTokenizer, piece, bars: int):
    """The first bars (up to ``bars``, at least 4) in one meter: (ids, meter, controls)."""
    info = tok.bars(ids[HEADER:].tolist())
    meters = [b["meter"] for b in info]
    if not meters or meters[0] is None:
        return None
    count = 0
    while count < min(bars, len(info)) and meters[count] == meters[0]:
        count += 1
    if count < 4:
        return None
    end = piece.bars[count] if count < len(piece.bars) else piece.length
    controls = tuple(
        BarControls(intensity=b["intensity"] or 0, hit=b["hit"], section=b["section"])
        for b in info[:count]
    )
    return ids[:end], meters[0], controls


def eval_generation(
    model: str | Path = DEFAULT_MODEL,
    cache: str | Path | None = None,
    pieces: int = 100,
    bars: int = 16,
    seed: int = 0,
    out: Path | None = None,
    progress: ProgressFn = no_progress,
) -> GenerationEval:
    """Generate ``pieces`` pieces from held-out plans and measure them (see module docstring)."""
    ckpt = load_checkpoint(model)
    tok = ckpt.tokenizer
    data = TokenCache.load(cache, tok)
    data.check_trained_with(ckpt.info, model)
    openings = held_out_openings(data, tok, bars)
    measured = {o.piece: measure(notes_of(tok, o.ids)) for ops in openings.values() for o in ops}
    plans = plans_from_held_out(openings, pieces, seed)
    results: list[PieceResult] = []
    speeds = []
    with contextlib.ExitStack() as stack:
        if out:
            midi_dir = out / "midi"
            midi_dir.mkdir(parents=True, exist_ok=True)
        else:
            midi_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for i, (opening, req) in enumerate(plans):
            progress("eval", i, len(plans))
            result = decode(ckpt, req)
            speeds.append(result.tokens_per_second)
            key = key_name(*req.key)
            path = midi_dir / f"{i:03d}-{req.style}-{key}.mid"
            results.append(
                _check(tok, result.best.ids, req, opening.piece, measured[opening.piece], path)
            )
            log.info("%s %s %s: %s", req.style, key, req.meter, results[-1].key_found)
    progress("eval", len(plans), len(plans))
    styles = []
    for style in sorted({p.style for p in results}):
        rows = [p for p in results if p.style == style and p.decoded]
        corpus = [measured[o.piece] for o in openings[style]]
        if rows:
            styles.append(
                StyleRow(
                    style,
                    len(rows),
                    {m: float(np.mean([p.metrics[m] for p in rows])) for m in METRICS},
                    {m: float(np.mean([p.reference_metrics[m] for p in rows])) for m in METRICS},
                    {m: float(np.mean([c[m] for c in corpus])) for m in METRICS},
                    held_out=len(corpus),
                )
            )
    report = GenerationEval(str(model), results, styles, float(np.median(speeds or [0.0])))
    if out:
        report.save(out)
    return report


def _check(
    tok: ScoreTokenizer,
    ids: list[int],
    req: GenerationRequest,
    ref_id: str,
    ref_metrics: dict[str, float],
    path: Path,
) -> PieceResult:
    key = key_name(*req.key)
    meter = f"{req.meter[0]}/{req.meter[1]}"
    base = dict(reference=ref_id, style=req.style, key=key, meter=meter, bars=req.bars)
    try:
        write_midi(tok, ids, path, tempo=100.0, key=req.key, overwrite=True)
        midi = symusic.Score(str(path))
        if not any(len(t.notes) for t in midi.tracks):
            raise ValueError("no notes")
    except Exception as e:  # a failure to decode is a measured outcome, not a crash
        return PieceResult(
            **base, decoded=False, bars_exact=False, key_found="", key_match=False,
            metrics={}, reference_metrics=ref_metrics, error=f"{type(e).__name__}: {e}",
        )  # fmt: skip
    notes = notes_of(tok, ids)
    meters_written = {(ts.numerator, ts.denominator) for ts in midi.time_signatures}
    bar_ticks = round(midi.ticks_per_quarter * req.meter[0] * 4 / req.meter[1])
    last_onset = max(n.time for t in midi.tracks for n in t.notes)
    bars_exact = (
        notes.bars == req.bars
        and set(notes.meters) == {req.meter}
        and meters_written == {req.meter}
        and last_onset < req.bars * bar_ticks
    )
    found = music21_key(notes)
    return PieceResult(
        **base,
        decoded=True,
        bars_exact=bars_exact,
        key_found=key_name(*found),
        key_match=found == req.key,
        metrics=measure(notes),
        reference_metrics=ref_metrics,
    )


def music21_key(notes: Notes) -> tuple[int, str]:
    """music21's key analysis of the notes (``analyze("key")``: Krumhansl-Schmuckler with
    Aarden-Essen weights)."""
    from music21 import note, stream

    s = stream.Stream()
    spb = notes.steps_per_beat
    for onset, dur, pitch in zip(notes.onset, notes.duration, notes.pitch, strict=True):
        n = note.Note(int(pitch))
        n.quarterLength = float(dur) / spb
        s.insert(float(onset) / spb, n)
    k = s.analyze("key")
    return k.tonic.pitchClass, "minor" if k.mode == "minor" else "major"


def _plot(styles: list[StyleRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4))
    x = np.arange(len(styles))
    for ax, m in zip(axes, METRICS, strict=True):
        ref = [r.reference[m] for r in styles]
        gen = [r.generated[m] for r in styles]
        ax.bar(x - 0.2, ref, 0.4, label="held-out", color="#888")
        ax.bar(x + 0.2, gen, 0.4, label="generated", color="#c44")
        ax.errorbar(x - 0.2, ref, yerr=np.abs(ref) * TOLERANCE, fmt="none", ecolor="k", capsize=3)
        ax.set_xticks(x, [r.style for r in styles], rotation=45, ha="right")
        ax.set_title(m.replace("_", " "))
    axes[0].legend()
    fig.suptitle(f"generated vs held-out per style (whiskers: ±{TOLERANCE:.0%})")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
