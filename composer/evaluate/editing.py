"""``composer eval edit``: does a span edit keep the rest, and do its words move the span?

For each score (MIDI files from anywhere: drums, tempo maps and odd meters included), one span
of four bars is chosen by a seeded draw among the bars where the score's melody (its highest
pitched part, composer.edit.span.track_roles) plays, inside one meter. The decoder writes the
melody of that span again twice (composer.edit.span.regenerate): "more intense" and "sparser".
Each result is checked and measured:

- kept: every note outside the span's melody (pitch, onset, duration, velocity, program, drum
  flag, track order), the tempo map, time and key signatures and markers identical;
- moved: the span's melody onsets and its mean velocity against the original's; "more intense"
  moves the span when either rises, "sparser" when its onsets fall.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import symusic

from composer.errors import ComposerError
from composer.outputs import atomic_write_text
from composer.progress import ProgressFn, no_progress

SPAN = 4  # bars
TARGET = 0.80  # share of trials a request moves the span the way it asks
REQUESTS = ("more intense", "sparser")


@dataclass
class Trial:
    score: str
    bars: tuple[int, int]  # 1-based, inclusive
    request: str
    onsets: tuple[int, int]  # the span's melody onsets before, after
    velocity: tuple[float, float]  # their mean velocity before, after
    moved: bool
    kept: bool  # everything outside the span's melody identical


@dataclass
class EditReport:
    trials: list[Trial] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "FILE: why"

    def rate(self, request: str) -> tuple[int, int]:
        mine = [t for t in self.trials if t.request == request]
        return sum(t.moved for t in mine), len(mine)

    def table(self) -> str:
        lines = [f"{'score':40s} {'bars':>7s} {'request':13s} {'onsets':>9s} {'velocity':>11s} "
                 f"{'moved':>5s} {'kept':>4s}"]  # fmt: skip
        for t in self.trials:
            lines.append(
                f"{t.score[:40]:40s} {t.bars[0]:3d}-{t.bars[1]:<3d} {t.request:13s} "
                f"{t.onsets[0]:4d}>{t.onsets[1]:<4d} {t.velocity[0]:5.1f}>{t.velocity[1]:<5.1f} "
                f"{'yes' if t.moved else 'no':>5s} {'yes' if t.kept else 'NO':>4s}"
            )
        lines.append("")
        for request in REQUESTS:
            met, n = self.rate(request)
            lines.append(f"{request!r} moves the span: {met}/{n} ({met / max(n, 1):.0%}; target "
                         f"{TARGET:.0%})")  # fmt: skip
        kept = sum(t.kept for t in self.trials)
        lines.append(f"everything outside the span kept: {kept}/{len(self.trials)}")
        lines += [f"skipped: {s}" for s in self.skipped]
        return "\n".join(lines)


def eval_edit(
    files: list[str | Path],
    *,
    trials: int = 20,
    seed: int = 0,
    out: str | Path | None = None,
    progress: ProgressFn = no_progress,
) -> EditReport:
    """Edit a span of each of the first ``trials`` usable ``files`` (sorted) with each request
    of REQUESTS; ``out``: a folder for edit.txt and edit.json."""
    from composer.edit.span import regenerate, track_roles
    from composer.music.midi import bar_lines, read_score

    report = EditReport()
    rng = np.random.default_rng(seed)
    used = 0
    for path in sorted(Path(f) for f in files):
        if used == trials:
            break
        progress("eval edit", used, trials)
        try:
            score = read_score(path)
            roles = track_roles(score)
            if not roles:
                raise ComposerError(path, "has no pitched notes")
            melody = next(i for i, r in roles.items() if r == 0)
            lines = bar_lines(score)
            lo = _span_start(score, melody, lines, rng)
        except ComposerError as e:
            report.skipped.append(f"{path.name}: {e.problem}")
            continue
        used += 1
        start, stop = lines[lo], lines[lo + SPAN]
        for request in REQUESTS:
            (edited,) = regenerate(score, (lo, lo + SPAN), [melody], request, seed, 1,
                                   starts=lines)  # fmt: skip
            before, after = _span(score, melody, start, stop), _span(edited, melody, start, stop)
            more = request == "more intense"
            moved = (after[0] > before[0] or after[1] > before[1]) if more else after[0] < before[0]
            report.trials.append(Trial(path.name, (lo + 1, lo + SPAN), request,
                                       (before[0], after[0]), (before[1], after[1]), moved,
                                       _kept(score, edited, melody, start, stop)))  # fmt: skip
    progress("eval edit", trials, trials)
    if out is not None:
        atomic_write_text(Path(out) / "edit.txt", report.table() + "\n")
        atomic_write_text(Path(out) / "edit.json", json.dumps(asdict(report), indent=1))
    return report


def _span_start(score, melody: int, lines: list[int], rng) -> int:
    """A first bar (0-based) of SPAN bars in one meter where the melody plays in each."""
    changes = {ts.time for ts in score.time_signatures}
    onsets = np.array([n.time for n in score.tracks[melody].notes])
    ok = []
    for b in range(len(lines) - 1 - SPAN):
        inside = [((onsets >= lines[k]) & (onsets < lines[k + 1])).any() for k in
                  range(b, b + SPAN)]  # fmt: skip
        if all(inside) and not any(lines[b] < t < lines[b + SPAN] for t in changes):
            ok.append(b)
    if not ok:
        raise ComposerError(None, f"no {SPAN} bars in one meter where the melody plays in each")
    return int(rng.choice(ok))


def _span(score: symusic.Score, track: int, lo: int, hi: int) -> tuple[int, float]:
    notes = [n for n in score.tracks[track].notes if lo <= n.time < hi]
    return len({n.time for n in notes}), float(np.mean([n.velocity for n in notes]) if notes else 0)


def _kept(a: symusic.Score, b: symusic.Score, track: int, lo: int, hi: int) -> bool:
    """Whether every note but ``track``'s attacked in [lo, hi), and every map, is the same."""

    def notes(s: symusic.Score) -> list:
        return [(i, t.program, t.is_drum, sorted((n.time, n.duration, n.pitch, n.velocity)
                 for n in t.notes if i != track or not lo <= n.time < hi))
                for i, t in enumerate(s.tracks)]  # fmt: skip

    def maps(s: symusic.Score) -> list:
        return [[(x.time, x.mspq) for x in s.tempos],
                [(x.time, x.numerator, x.denominator) for x in s.time_signatures],
                [(x.time, x.key, x.tonality) for x in s.key_signatures],
                [(x.time, x.text) for x in s.markers]]  # fmt: skip

    return notes(a) == notes(b) and maps(a) == maps(b)
