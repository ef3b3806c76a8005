"""Stage 1 on every shared clip: a table of what was found, checked against the known facts.

    .venv/bin/python evals/analysis_report.py [MEDIA_DIR] [--plots DIR]

Prints one row per clip (duration, frames, VFR, cuts and fades with frame numbers, mean motion,
beats, analysis time and real-time factor) and the acceptance checks of issue 3 with their figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from composer.video import analyze
from composer.video.timeline import plot_timeline

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("media", nargs="?", type=Path, default=ROOT.parent / "shared" / "media")
    ap.add_argument("--plots", type=Path, help="write a timeline PNG per clip here")
    args = ap.parse_args()
    videos = sorted(
        p
        for p in (args.media / "videos").iterdir()
        if p.suffix in {".mp4", ".avi", ".mkv", ".webm"}
    )
    results = {}
    print(
        f"{'clip':42s} {'dur s':>6s} {'frames':>6s} {'vfr':>3s} {'motion':>6s} {'beats':>5s} "
        f"{'time s':>6s} {'xRT':>5s}  scene changes (time s @frame)"
    )
    for v in videos:
        t0 = time.perf_counter()
        a = analyze(v)
        dt = time.perf_counter() - t0
        results[v.name] = a
        changes = ", ".join(_change(c, a.fps) for c in a.cuts) or "none"
        vfr = "y" if a.variable_frame_rate else "n"
        print(
            f"{v.name:42s} {a.duration:6.2f} {a.frame_count:6d} {vfr:>3s} {a.mean_motion():6.3f} "
            f"{len(a.beats):5d} {dt:6.2f} {a.duration / dt:5.1f}  {changes}"
        )
        if args.plots:
            args.plots.mkdir(parents=True, exist_ok=True)
            plot_timeline(a, args.plots / f"{v.stem}.png")

    def hard(name: str) -> list[float]:
        return [c.time for c in results[name].cuts if c.kind == "cut"]

    print("\nacceptance checks")
    fps = 30000 / 1001
    tv = results["pyscenedetect_testvideo.mp4"]
    cut_frames = [round(t * fps, 1) for t in hard("pyscenedetect_testvideo.mp4")]
    fade_frames = [(c.direction, round(c.time * fps)) for c in tv.cuts if c.kind == "fade"]
    checks = [
        (
            "testvideo hard cuts at frames 30, 180 (+-2)",
            cut_frames,
            len(cut_frames) == 2 and abs(cut_frames[0] - 30) <= 2 and abs(cut_frames[1] - 180) <= 2,
        ),
        (
            "testvideo fades in ~213, 394 / out ~340, 670",
            fade_frames,
            [d for d, _ in fade_frames] == ["in", "out", "in", "out"],
        ),
    ]
    for name in ("moviepy_chaplin.mp4", "mmaction2_test.mp4", "mmaction2_test.avi"):
        checks.append((f"{name}: no hard cuts", hard(name), hard(name) == []))
    gold = hard("pyscenedetect_goldeneye-vfr-drop3.mp4")
    checks.append(
        ("goldeneye cut at 3.754 s (+-0.1)", gold, any(abs(t - 3.754) <= 0.1 for t in gold))
    )
    m = {
        k: round(results[k].mean_motion(), 3)
        for k in (
            "mmaction2_test_video_structuralize.mp4",
            "moviepy_chaplin.mp4",
            "mmaction2_test.avi",
        )
    }
    vals = list(m.values())
    checks.append(("motion: basketball > chaplin, test.avi", m, vals[0] > max(vals[1:])))
    ok = True
    for label, figure, passed in checks:
        ok &= passed
        print(f"  [{'pass' if passed else 'FAIL'}] {label}: {figure}")
    return 0 if ok else 1


def _change(c, fps: float) -> str:
    kind = c.kind + (f"-{c.direction}" if c.direction else "")
    return f"{kind} {c.time:.3f}@{c.time * fps:.0f}"


if __name__ == "__main__":
    sys.exit(main())
