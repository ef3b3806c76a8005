"""The ``composer`` command: argument parsing and progress bars over the library, nothing more
(``eval`` and ``bench`` are in cli_measure)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from composer.cli_measure import add_commands as add_measure_commands
from composer.cli_train import add_train_command
from composer.errors import ComposerError
from composer.outputs import Outputs
from composer.process import Terminated, signals_as_exceptions
from composer.progress import progress_bar


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with signals_as_exceptions():
            return args.run(args) or 0
    except ComposerError as e:
        print(f"composer: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("composer: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"composer: stopped by {e}", file=sys.stderr)
        return 128 + e.signum


def _levels(text: str) -> list[int]:
    """--intensity: comma-separated integers."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated levels: {text!r}") from None


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

    g = sub.add_parser("generate", help="write music with the decoder, steered by controls")
    g.add_argument("--style", default="chorale", help="style family (see --help for the list)")
    g.add_argument("--key", help='e.g. "D minor", "F#", "Bbm" (default: C major)')
    g.add_argument("--meter", help="e.g. 3/4, 6/8 (default: 4/4)")
    g.add_argument("--tempo", type=float, help="quarter notes per minute (default: 100)")
    g.add_argument("--bars", type=int, default=16)
    g.add_argument(
        "--intensity",
        type=_levels,
        help="per-bar intensity 0-3, comma separated, cycled (e.g. 1,1,2,3; default: 1)",
    )
    g.add_argument(
        "--instruction",
        metavar="TEXT",
        help='a request in plain words ("slow and in minor, low and sparse"): the '
        "instruction reader sets the mode, meter, tempo, density and register that flags "
        "leave unset; with --adapter instruct the decoder also reads the text's prefix vectors",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("-n", "--candidates", type=int, default=4, help="decoded as a batch")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    g.add_argument(
        "--reference",
        metavar="FILE[#N]|auto",
        help="prime the decoder with this piece (tune N of an ABC file): a 2-bar excerpt in "
        "the key and meter asked, or its intensity pattern where the meter differs; 'auto': "
        "the shipped library's best piece for the style, key, meter and tempo",
    )
    g.add_argument(
        "--adapter",
        default="auto",
        metavar="NAME",
        help="LoRA adapter of the model to merge in; 'auto' (default): the one named after "
        "--style if the model has one; 'none': the base alone",
    )
    g.add_argument(
        "--style-guidance",
        type=float,
        metavar="G",
        help="guidance away from the adapter's neighbouring style (1: none; default: the "
        "adapter's own, see README)",
    )
    g.add_argument("-o", "--output", type=Path, required=True, help="MIDI file to write")
    g.add_argument("--force", action="store_true", help="replace an existing output file")
    g.set_defaults(run=_generate)

    c = sub.add_parser("compose", help="score a video (or a text request) end to end")
    c.add_argument("video", type=Path, nargs="?", help="the video to score (optional)")
    c.add_argument("--prompt", default="", help='e.g. "a slow chorale in D minor for strings"')
    c.add_argument("--duration", type=float, help="seconds, for a text-only request")
    c.add_argument("-o", "--outdir", type=Path, default=Path("out"))
    c.add_argument("--describer", default="signal", help="signal | transformers:PATH | openai:URL")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    c.add_argument("--soundfont", type=Path, metavar="SF2")
    c.add_argument(
        "--library",
        type=Path,
        metavar="DIR",
        help="reference library (default: the music21 library shipped with composer)",
    )
    c.add_argument(
        "--adapter",
        default="auto",
        metavar="NAME",
        help="LoRA adapter to merge in; 'auto' (default): the one named after the plan's "
        "style if the model has one; 'none': the base alone",
    )
    c.add_argument(
        "--style-guidance",
        type=float,
        metavar="G",
        help="guidance away from the adapter's neighbouring style (1: none; default: the "
        "adapter's own)",
    )
    c.add_argument("--force", action="store_true", help="replace an existing OUTDIR")
    c.set_defaults(run=_compose)

    _add_edit_command(sub)
    add_train_command(sub)

    ix = sub.add_parser("index", help="stage 4: add pieces to a reference library (incremental)")
    ix.add_argument(
        "paths",
        type=Path,
        nargs="*",
        metavar="PATH",
        help="MIDI, MusicXML, ABC or Humdrum files and folders (default: music21's corpus)",
    )
    ix.add_argument("--library", type=Path, help="library folder (default: the shipped one)")
    ix.add_argument("--style", default="user", help="style family of the pieces in PATH")
    ix.add_argument("--rebuild", action="store_true", help="start the library afresh")
    ix.set_defaults(run=_index)

    se = sub.add_parser("search", help="stage 4: find reference pieces in a library")
    se.add_argument("query", nargs="?", default="", help='e.g. "a slow Irish air in G minor"')
    se.add_argument("--key", help='e.g. "D minor" (overrides the query)')
    se.add_argument("--style", help="style family, e.g. folk, chorale, fiddle")
    se.add_argument("--meter", help="e.g. 3/4")
    se.add_argument("--tempo", type=float, help="quarter notes per minute")
    se.add_argument("--like", type=Path, metavar="FILE", help="a piece to sound like (features)")
    se.add_argument("--library", type=Path, help="library folder (default: the shipped one)")
    se.add_argument("-k", type=int, default=10, help="how many hits (default: 10)")
    se.set_defaults(run=_search)

    d = sub.add_parser("doctor", help="check libfluidsynth, soundfonts and ffmpeg, with fixes")
    d.add_argument("--soundfont", type=Path, metavar="SF2")
    d.set_defaults(run=_doctor)

    add_measure_commands(sub)

    m = sub.add_parser("demo", help="run the pipeline on a clip it makes itself")
    m.add_argument("-o", "--outdir", type=Path, default=Path("demo-out"))
    m.set_defaults(run=_demo)
    return p


def _add_edit_command(sub) -> None:
    e = sub.add_parser("edit", help="change part of a score, keeping the rest note for note")
    e.add_argument("score", type=Path, metavar="SCORE", help="composer's output folder (edited "
                   "in place, as a new version) or a MIDI file")  # fmt: skip
    e.add_argument("--bars", metavar="A-B", help="the bars to change, e.g. 9-12 (1-based)")
    e.add_argument("--tracks", metavar="T,T", help="the tracks to change: role words (melody, "
                   "bass), names or indices, comma separated")  # fmt: skip
    e.add_argument("--prompt", metavar="TEXT", help="regenerate the bars as these words ask")
    e.add_argument("--instrument", action="append", metavar="TRACK=INSTRUMENT", help="give a "
                   "track another instrument: melody=flute, bass=43 (repeatable)")  # fmt: skip
    e.add_argument("--transpose", type=int, metavar="SEMITONES", help="e.g. +2, -12")
    e.add_argument("--tempo", type=float, metavar="BPM",
                   help="the first tempo, the rest in proportion; on a scored video, bars are "
                        "dropped or repeated between its cuts so each keeps its beat")  # fmt: skip
    e.add_argument("--key", help='move the score into this key, e.g. "E minor"')
    e.add_argument("--mute", action="append", metavar="TRACK", help="silence a track")
    e.add_argument("--delete", action="append", metavar="TRACK", help="remove a track")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("-n", type=int, default=1, help="candidates to make (with --preview)")
    e.add_argument("--preview", action="store_true",
                   help="write candidates to candidates/K/, leave score.mid as it is")  # fmt: skip
    step = e.add_mutually_exclusive_group()
    step.add_argument("--accept", type=int, metavar="K", help="make candidate K the new version")
    step.add_argument("--undo", action="store_true", help="go back to the previous version")
    step.add_argument("--redo", action="store_true", help="go forward to the version undone")
    e.add_argument("-o", "--out", type=Path, metavar="OUTDIR", help="for a MIDI file: the "
                   "folder to write (default: STEM-edit/ beside it)")  # fmt: skip
    e.add_argument("--force", action="store_true", help="replace an existing OUTDIR")
    e.set_defaults(run=_edit)


def _edit(args: argparse.Namespace) -> int:
    from composer.edit import accept, edit, redo, undo

    options = {"--bars": args.bars, "--tracks": args.tracks, "--prompt": args.prompt,
               "--instrument": args.instrument, "--transpose": args.transpose,
               "--tempo": args.tempo, "--key": args.key, "--mute": args.mute,
               "--delete": args.delete, "--preview": args.preview or None,
               "-o": args.out}  # fmt: skip
    given = [flag for flag, value in options.items() if value is not None]
    if (args.undo or args.redo or args.accept is not None) and given:
        raise ComposerError(None, f"--undo, --redo and --accept take no edit options "
                                  f"({', '.join(given)})")  # fmt: skip
    bad = [p for p in args.instrument or [] if "=" not in p]
    if bad:
        raise ComposerError(None, f"--instrument {bad[0]!r}: give TRACK=INSTRUMENT (melody=flute)")
    with progress_bar() as progress:
        if args.undo or args.redo:
            res = (undo if args.undo else redo)(args.score, progress=progress)
        elif args.accept is not None:
            res = accept(args.score, args.accept, progress=progress)
        else:
            res = edit(
                args.score, bars=args.bars, tracks=args.tracks, prompt=args.prompt,
                instrument=dict(p.split("=", 1) for p in args.instrument or []) or None,
                transpose=args.transpose, tempo=args.tempo, key=args.key, mute=args.mute,
                delete=args.delete, seed=args.seed, n=args.n, preview=args.preview,
                out=args.out, force=args.force, progress=progress,
            )  # fmt: skip
    print(f"{res.folder}: version {res.version} is current")
    for line in [f"note: {n}" for n in res.notes] + [f"wrote {p}" for p in res.files]:
        print(f"  {line}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from composer.video import analyze
    from composer.video.timeline import plot_timeline

    # Every output is checked, and its temporary name made, before the video is decoded; all
    # are put in place together at the end, or none is.
    with Outputs(force=args.force) as outputs:
        analysis_tmp = outputs.file(args.output, "json")
        plot_tmp = outputs.file(args.plot, "png") if args.plot else None
        frames_tmp = outputs.folder(args.keyframes) if args.keyframes else None
        with progress_bar() as progress:
            result = analyze(args.video, progress=progress)
        analysis_tmp.write_text(result.to_json() + "\n")
        if plot_tmp:
            plot_timeline(result, plot_tmp, overwrite=True)
        if frames_tmp:
            for k in result.keyframes:
                k.image.save(frames_tmp / f"scene{k.scene:03d}_{k.time:08.3f}s.jpg", format="JPEG")
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
    with Outputs(force=args.force) as outputs:  # the WAV and the video land together, or neither
        wav_tmp = outputs.file(wav, "wav")
        video_tmp = outputs.file(args.out_video, "video") if args.out_video else None
        with progress_bar() as progress:
            audio = render_midi(
                args.score, wav_tmp, soundfont=args.soundfont, overwrite=True, progress=progress
            )
        if video_tmp:
            mux(
                args.video,
                wav_tmp,
                video_tmp,
                original_audio_db=args.keep_original_audio,
                overwrite=True,
            )
    print(
        f"wrote {wav}: {audio.duration:.2f} s, peak {audio.peak_dbfs:.1f} dBFS "
        f"({Path(audio.soundfont).name})"
    )
    if args.out_video:
        print(f"wrote {args.out_video}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from composer.model.generate import generate
    from composer.music.keys import key_name

    with Outputs(force=args.force) as outputs:  # checked before the model loads
        midi = outputs.file(args.output, "midi")
        with progress_bar() as progress:
            res = generate(
                style=args.style, key=args.key, meter=args.meter, tempo=args.tempo,
                bars=args.bars, intensity=args.intensity, instruction=args.instruction,
                seed=args.seed, candidates=args.candidates, temperature=args.temperature,
                top_p=args.top_p, reference=args.reference, model=args.model,
                adapter=None if args.adapter == "none" else args.adapter,
                style_guidance=args.style_guidance, output=midi, overwrite=True,
                progress=progress,
            )  # fmt: skip
    if args.instruction:
        said = ", ".join(f"{a} {v} ({p:.2f})" for a, (v, p) in res.reading.items())
        print(f"instruction read as: {said or 'no attribute'}")
    if res.reference and args.reference == "auto":
        print(f"reference: {res.reference}")
    if res.priming:
        print(res.priming)
    req, b = res.request, res.best
    print(
        f"wrote {args.output}: {req.bars} bars of {req.meter[0]}/{req.meter[1]} in "
        f"{key_name(*req.key)} at {res.tempo:g} bpm, style {req.style}; best of "
        f"{len(res.candidates)}: adherence {b.adherence:.2f}, log-likelihood "
        f"{b.log_likelihood:.2f}/token ({res.tokens_per_second:.0f} tokens/s)"
    )
    return 0


def _compose(args: argparse.Namespace) -> int:
    from composer.pipeline import compose

    with progress_bar() as progress:
        res = compose(
            args.video,
            args.prompt,
            args.outdir,
            duration=args.duration,
            describer=args.describer,
            model=args.model,
            seed=args.seed,
            force=args.force,
            soundfont=args.soundfont,
            library=args.library,
            adapter=None if args.adapter == "none" else args.adapter,
            style_guidance=args.style_guidance,
            progress=progress,
        )
    plan = res.record.plan
    refs = res.record.references
    print(
        f"composed {plan.duration.value:.1f} s: {plan.style.value}, "
        f"{'/'.join(map(str, plan.meter.value))} at {plan.tempo.value:.0f} bpm, "
        f"{len(plan.bars)} bars, {len(plan.hit_points)} hit points"
    )
    if refs and refs.picks:
        print("references: " + "; ".join(f"{r.title} ({r.by})" for r in refs.picks))
        print(f"  {refs.priming}")
    for name, path in res.files.items():
        print(f"  {name:9s} {path}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from composer.paths import DEFAULT_LIBRARY
    from composer.retrieve.index import IndexConfig, index

    with progress_bar() as progress:
        r = index(
            args.paths or None,
            args.library or DEFAULT_LIBRARY,
            config=IndexConfig(style=args.style),
            rebuild=args.rebuild,
            progress=progress,
        )
    for where, reason in r.bad:
        print(f"skipped {where}: {reason}")
    print(
        f"{r.library}: {r.pieces_total} pieces ({r.size_bytes / 1e6:.1f} MB); this run: "
        f"{r.files} files, {r.indexed} indexed, {r.unchanged} unchanged, "
        f"{r.removed_files} gone; +{r.pieces_added} -{r.pieces_removed} pieces, "
        f"{r.duplicates} duplicates and {len(r.bad)} bad skipped"
    )
    if r.pieces_added:
        print(f"build rate: {r.rate:.2f} pieces/s ({r.pieces_added} pieces in {r.seconds:.1f} s)")
    else:
        print(f"nothing new to index ({r.seconds:.1f} s)")
    return 0


def _search(args: argparse.Namespace) -> int:
    from composer.paths import DEFAULT_LIBRARY
    from composer.retrieve.search import parse_query, reference_features, search

    try:
        hits = search(
            args.library or DEFAULT_LIBRARY,
            args.query,
            key=args.key,
            style=args.style,
            meter=args.meter,
            tempo=args.tempo,
            k=args.k,
            features=reference_features(args.like) if args.like else None,
        )
    except ValueError as e:
        raise ComposerError(None, str(e)) from None
    notes = parse_query(args.query).notes
    if notes:
        print("read from the query: " + "; ".join(notes))
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:2d}. {hit.line()}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from composer.doctor import check, format_report

    checks = check(soundfont=args.soundfont)
    print(format_report(checks))
    return 0 if all(c.ok for c in checks) else 1


def _demo(args: argparse.Namespace) -> int:
    from composer.demo import run_demo

    with progress_bar() as progress:
        outputs = run_demo(args.outdir, progress=progress)
    for name, res in outputs.items():
        plan = res.record.plan
        print(
            f"{name}: {plan.duration.value:.1f} s of {plan.style.value} in "
            f"{'/'.join(map(str, plan.meter.value))} at {plan.tempo.value:.0f} bpm, "
            f"{len(plan.hit_points)} cuts marked"
        )
        for kind, path in res.files.items():
            print(f"  {kind:9s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
