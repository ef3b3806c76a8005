"""The ``composer`` command: argument parsing and progress bars over the library, nothing more."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from composer.errors import ComposerError
from composer.progress import ProgressFn, log


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args) or 0
    except ComposerError as e:
        print(f"composer: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("composer: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from composer import __version__

    p = argparse.ArgumentParser(
        prog="composer",
        description=(
            "Score a video with music you can edit. Run 'composer doctor' to check the set-up."
        ),
    )
    p.add_argument("--version", action="version", version=f"composer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what each stage does")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("analyze", help="stage 1: measure a video's cuts, motion, beats, colour")
    a.add_argument("video", type=Path)
    a.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("analysis.json"),
        help="analysis JSON to write (default: analysis.json)",
    )
    a.add_argument("--plot", type=Path, metavar="PNG", help="also draw the timeline to this PNG")
    a.add_argument(
        "--keyframes",
        type=Path,
        metavar="DIR",
        help="also save the keyframes as JPEG files in this folder",
    )
    a.add_argument("--force", action="store_true", help="replace existing output files")
    a.set_defaults(run=_analyze)

    r = sub.add_parser("render", help="stage 7: render a MIDI score to audio (and into a video)")
    r.add_argument("score", type=Path, metavar="SCORE.mid")
    r.add_argument("-o", "--output", type=Path, help="WAV to write (default: SCORE.wav)")
    r.add_argument(
        "--soundfont",
        type=Path,
        metavar="SF2",
        help="soundfont (default: $COMPOSER_SOUNDFONT, soundfonts/, FluidR3_GM, ...)",
    )
    r.add_argument("--video", type=Path, help="video to put the music into")
    r.add_argument("--out-video", type=Path, metavar="MP4", help="muxed video to write")
    r.add_argument(
        "--keep-original-audio",
        type=float,
        metavar="DB",
        default=None,
        help="keep the video's own audio, mixed under the music at DB (e.g. -12); "
        "by default it is replaced",
    )
    r.add_argument("--force", action="store_true", help="replace existing output files")
    r.set_defaults(run=_render)

    d = sub.add_parser("doctor", help="check libfluidsynth, soundfonts and ffmpeg, with fixes")
    d.add_argument("--soundfont", type=Path, metavar="SF2")
    d.set_defaults(run=_doctor)

    b = sub.add_parser("bench", help="benchmarks that print figures measured side by side")
    bsub = b.add_subparsers(dest="what", required=True, metavar="WHAT")
    ba = bsub.add_parser("analyze", help="full analysis vs PySceneDetect ContentDetector alone")
    ba.add_argument("video", type=Path)
    ba.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    ba.set_defaults(run=_bench_analyze)

    m = sub.add_parser("demo", help="run the pipeline on a clip it makes itself")
    m.add_argument("-o", "--outdir", type=Path, default=Path("demo-out"))
    m.set_defaults(run=_demo)
    return p


def _bar() -> tuple[ProgressFn, Callable[[], None]]:
    """A tqdm bar per stage, with ETA; returns (callback, close)."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: float, total: float | None) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total,
                desc=stage,
                unit="s",
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                "{n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"
                if total
                else None,
                disable=None,
            )
        if total and bar.total != total:
            bar.total = total
        bar.n = min(done, total) if total else done
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def _analyze(args: argparse.Namespace) -> int:
    from composer.io import atomic_path
    from composer.video import analyze
    from composer.video.timeline import plot_timeline

    outputs = [args.output] + ([args.plot] if args.plot else [])
    for out in outputs:
        if out.exists() and not args.force:
            raise ComposerError(out, "already exists (pass --force to replace it)")
    progress, close = _bar()
    try:
        result = analyze(args.video, progress=progress)
    finally:
        close()
    result.save(args.output)
    if args.plot:
        plot_timeline(result, args.plot, overwrite=True)
    if args.keyframes:
        args.keyframes.mkdir(parents=True, exist_ok=True)
        for k in result.keyframes:
            with atomic_path(
                args.keyframes / f"scene{k.scene:03d}_{k.time:08.3f}s.jpg", overwrite=args.force
            ) as tmp:
                k.image.save(tmp, format="JPEG")
    cuts = sum(c.kind == "cut" for c in result.cuts)
    fades = len(result.cuts) - cuts
    print(
        f"{args.video}: {result.duration:.2f} s, {result.frame_count} frames, {cuts} cuts, "
        f"{fades} fades, {len(result.beats)} visual beats, mean motion "
        f"{result.mean_motion():.2f}"
    )
    print(f"wrote {args.output}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _render(args: argparse.Namespace) -> int:
    from composer.render import mux, render_midi

    if bool(args.video) != bool(args.out_video):
        raise ComposerError(None, "--video and --out-video go together")
    wav = args.output or args.score.with_suffix(".wav")
    if args.out_video and args.out_video.exists() and not args.force:
        raise ComposerError(args.out_video, "already exists (pass --force to replace it)")
    progress, close = _bar()
    try:
        audio = render_midi(
            args.score, wav, soundfont=args.soundfont, overwrite=args.force, progress=progress
        )
    finally:
        close()
    print(
        f"wrote {audio.path}: {audio.duration:.2f} s, peak {audio.peak_dbfs:.1f} dBFS "
        f"({Path(audio.soundfont).name})"
    )
    if args.video:
        mux(
            args.video,
            audio.path,
            args.out_video,
            original_audio_db=args.keep_original_audio,
            overwrite=args.force,
        )
        print(f"wrote {args.out_video}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from composer.doctor import check, format_report

    checks = check(soundfont=args.soundfont)
    print(format_report(checks))
    return 0 if all(c.ok for c in checks) else 1


def _bench_analyze(args: argparse.Namespace) -> int:
    from composer.bench import bench_analyze

    print(bench_analyze(args.video, repeat=args.repeat).report())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from composer.demo import run_demo

    progress, close = _bar()
    try:
        outputs = run_demo(args.outdir, progress=progress)
    finally:
        close()
    log.info("demo finished")
    print("demo outputs:")
    for name, path in outputs.items():
        print(f"  {name:10s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
