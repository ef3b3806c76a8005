"""The ``composer eval`` and ``composer bench`` commands: measurements that print tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from composer.progress import progress_bar


def add_commands(sub) -> None:
    """Add ``bench`` and ``eval`` with their subcommands to the parser's subparsers ``sub``."""
    b = sub.add_parser("bench", help="benchmarks that print figures measured side by side")
    bsub = b.add_subparsers(dest="what", required=True, metavar="WHAT")
    ba = bsub.add_parser("analyze", help="full analysis vs PySceneDetect ContentDetector alone")
    ba.add_argument("video", type=Path)
    ba.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    ba.set_defaults(run=_bench_analyze)
    bg = bsub.add_parser("generate", help="composer's decoding loop vs plain model.generate")
    bg.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    bg.add_argument("--bars", type=int, default=8)
    bg.add_argument("-n", "--candidates", type=int, default=4)
    bg.set_defaults(run=_bench_generate)
    bc = bsub.add_parser("compose", help="end-to-end real-time factor of compose on a video")
    bc.add_argument("video", type=Path)
    bc.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    bc.set_defaults(run=_bench_compose)
    be = bsub.add_parser("edit", help="an edit of 4 bars of a 30 s score vs composing it again")
    be.add_argument("--runs", type=int, default=3)
    be.add_argument("-o", "--output", type=Path, help="also write the figures to this file")
    be.set_defaults(run=_bench_edit)
    bs = bsub.add_parser("search", help="library search latency at 20,000 pieces, build rate")
    bs.add_argument("--pieces", type=int, default=20_000, help="synthetic library size")
    bs.add_argument("--queries", type=int, default=50)
    bs.add_argument("-o", "--output", type=Path, help="also write the figures to this file")
    bs.set_defaults(run=_bench_search)

    e = sub.add_parser("eval", help="evaluations with acceptance tables")
    esub = e.add_subparsers(dest="what", required=True, metavar="WHAT")
    eg = esub.add_parser(
        "generate", help="generated pieces vs the held-out corpus: decode, bars, key, style"
    )
    eg.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    eg.add_argument("--cache", type=Path, default=None, help="token cache (composer train)")
    eg.add_argument("-n", "--pieces", type=int, default=100)
    eg.add_argument("--bars", type=int, default=16, help="bars per piece (at most)")
    eg.add_argument("--seed", type=int, default=0)
    eg.add_argument(
        "-o", "--outdir", type=Path, help="write generation.json/.txt/.png and the MIDI files"
    )
    eg.set_defaults(run=_eval_generate)

    el = esub.add_parser("loss", help="held-out loss of the decoder vs n-gram baselines")
    el.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    el.add_argument("--cache", type=Path, default=None)
    el.add_argument("--split", choices=("val", "test"), default="val")
    el.add_argument(
        "--no-transposed",
        action="store_true",
        help="skip the n-grams fitted on transposed data (12x the tokens, a few GB)",
    )
    el.set_defaults(run=_eval_loss)

    er = esub.add_parser("retrieval", help="held-out pieces found by a paraphrase of their own")
    er.add_argument("--library", type=Path, help="library folder (default: the shipped one)")
    er.add_argument("-n", "--pieces", type=int, default=200)
    er.add_argument("--seed", type=int, default=0)
    er.add_argument("--split", choices=("val", "test"), default="test")
    er.add_argument("-o", "--output", type=Path, help="also write the table to this file")
    er.set_defaults(run=_eval_retrieval)

    ep = esub.add_parser(
        "priming", help="is generation primed by a held-out piece closer to it than unprimed?"
    )
    ep.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    ep.add_argument("--cache", type=Path, default=None)
    ep.add_argument("-n", "--pieces", type=int, default=24, help="held-out references")
    ep.add_argument("--bars", type=int, default=8, help="bars per piece (at most)")
    ep.add_argument("--seed", type=int, default=0)
    ep.add_argument("--midi", type=Path, metavar="DIR", help="write the outputs here (MIDI)")
    ep.add_argument("-o", "--output", type=Path, metavar="TXT", help="write the table here")
    ep.set_defaults(run=_eval_priming)

    ec = esub.add_parser(
        "copies", help="longest runs of bars identical to a reference or any training piece"
    )
    ec.add_argument("paths", type=Path, nargs="+", metavar="MIDI", help="files or folders")
    ec.add_argument(
        "--reference", metavar="FILE[#N]", help="the files' reference (default: references.json)"
    )
    ec.add_argument("--cache", type=Path, default=None, help="training tokens")
    ec.add_argument("-o", "--output", type=Path, metavar="TXT", help="write the table here")
    ec.set_defaults(run=_eval_copies)

    es = esub.add_parser(
        "styles", help="style classifier agreement with and without each style's adapter"
    )
    es.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    es.add_argument("--cache", type=Path, default=None)
    es.add_argument(
        "-n", "--pieces", type=int, default=100, help="pieces per style and arm (default 100)"
    )
    es.add_argument("--bars", type=int, default=8)
    es.add_argument("--seed", type=int, default=0)
    es.add_argument("-o", "--outdir", type=Path, help="write styles.txt and styles.json here")
    es.set_defaults(run=_eval_styles)

    ei = esub.add_parser(
        "instructions", help="held-out instructions: stated attributes met, with and without"
    )
    ei.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    ei.add_argument("-n", "--instructions", type=int, default=100)
    ei.add_argument("--bars", type=int, default=8)
    ei.add_argument("--free", type=int, default=12, help="pieces per free-text phrase")
    ei.add_argument("--seed", type=int, default=0)
    ei.add_argument("-o", "--outdir", type=Path, help="write instructions.txt and .json here")
    ei.set_defaults(run=_eval_instructions)

    eq = esub.add_parser(
        "requests", help="requests composed end to end: stated attributes met, craft, notation"
    )
    eq.add_argument("battery", type=Path, nargs="?",
                    help="a request battery: request TAB attribute=value ... per line")  # fmt: skip
    eq.add_argument("--videos", type=Path, nargs="*", default=[],
                    help="videos to compose too (craft and notation only)")  # fmt: skip
    eq.add_argument("--duration", type=float, default=20.0, help="seconds per request")
    eq.add_argument("--seed", type=int, default=0)
    eq.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    eq.add_argument("-o", "--outdir", type=Path, help="keep the pieces and the tables here")
    eq.add_argument("--output", type=Path, help="also write the table here, headed by the command")
    eq.set_defaults(run=_eval_requests)

    ed = esub.add_parser("edit", help="span edits: the rest kept, the span moved as asked")
    ed.add_argument(
        "files",
        type=Path,
        nargs="+",
        help="MIDI files or composer output folders to edit (copies in memory)",
    )
    ed.add_argument("--trials", type=int, default=0,
                    help="scores to edit, the first usable (default: all)")  # fmt: skip
    ed.add_argument("--seed", type=int, default=0)
    ed.add_argument("--output", type=Path, help="also write the table here, headed by the command")
    ed.set_defaults(run=_eval_edit)

    ef = esub.add_parser(
        "infill", help="held-out spans: infilling's loss against continuation's, and the seams"
    )
    ef.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    ef.add_argument("--cache", type=Path, default=None, help="token cache (default: the corpus')")
    ef.add_argument("--split", default="test", choices=("val", "test"))
    ef.add_argument("--spans", type=int, default=512, help="spans scored for the loss")
    ef.add_argument("--seam-spans", type=int, default=96, help="spans written again for seams")
    ef.add_argument("--seed", type=int, default=0)
    ef.add_argument("--output", type=Path, help="also write the table here, headed by the command")
    ef.set_defaults(run=_eval_infill)

    em = esub.add_parser(
        "musicality", help="harmony, voice leading, texture and form of composed pieces vs corpus"
    )
    em.add_argument("battery", type=Path, nargs="?",
                    help="a request battery: request TAB [texture=waltz|march|jig]")  # fmt: skip
    em.add_argument("--videos", type=Path, nargs="*", default=[], help="videos to compose too")
    em.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per request")
    em.add_argument("--duration", type=float, default=40.0, help="seconds per request")
    em.add_argument("--scores", type=Path, nargs="*", default=[], metavar="DIR",
                    help="measure these output folders instead of composing")  # fmt: skip
    em.add_argument("--corpus-per-style", type=int, default=40,
                    help="library pieces measured per style (0: none)")  # fmt: skip
    em.add_argument("--model", type=Path, help="checkpoint folder (default: the shipped model)")
    em.add_argument("-o", "--outdir", type=Path,
                    help="keep the pieces; write musicality.txt, .json, .png here")  # fmt: skip
    em.add_argument("--output", type=Path, help="also write the table here, headed by the command")
    em.set_defaults(run=_eval_musicality)


def _bench_generate(args: argparse.Namespace) -> int:
    from composer.bench import bench_generate
    from composer.paths import DEFAULT_MODEL

    print(
        bench_generate(
            args.model or DEFAULT_MODEL, bars=args.bars, candidates=args.candidates
        ).report()
    )
    return 0


def _eval_generate(args: argparse.Namespace) -> int:
    from composer.evaluate.generation import eval_generation
    from composer.paths import DEFAULT_MODEL

    with progress_bar() as progress:
        report = eval_generation(
            args.model or DEFAULT_MODEL,
            cache=args.cache,
            pieces=args.pieces,
            bars=args.bars,
            seed=args.seed,
            out=args.outdir,
            progress=progress,
        )
    print(report.table())
    if args.outdir:
        print(f"wrote {args.outdir}/generation.txt, generation.json, generation.png, midi/")
    return 0


def _eval_loss(args: argparse.Namespace) -> int:
    from composer.evaluate.loss import eval_loss
    from composer.paths import DEFAULT_MODEL

    with progress_bar() as progress:
        report = eval_loss(
            args.model or DEFAULT_MODEL,
            cache=args.cache,
            split=args.split,
            transposed=not args.no_transposed,
            progress=progress,
        )
    print(report.table())
    return 0


def _eval_priming(args: argparse.Namespace) -> int:
    from composer.evaluate.priming import eval_priming
    from composer.paths import DEFAULT_MODEL

    with progress_bar() as progress:
        report = eval_priming(
            args.model or DEFAULT_MODEL,
            cache=args.cache,
            pieces=args.pieces,
            bars=args.bars,
            seed=args.seed,
            midi_dir=args.midi,
            progress=progress,
        )
    _show(report.table(), args.output)
    return 0


def _eval_copies(args: argparse.Namespace) -> int:
    from composer.evaluate.copies import eval_copies

    with progress_bar() as progress:
        report = eval_copies(
            args.paths, reference=args.reference, cache=args.cache, progress=progress
        )
    _show(report.table(), args.output)
    return 0 if report.ok else 1


def _eval_styles(args: argparse.Namespace) -> int:
    from composer.evaluate.styles import eval_styles
    from composer.paths import DEFAULT_MODEL

    with progress_bar() as progress:
        report = eval_styles(
            args.model or DEFAULT_MODEL,
            cache=args.cache,
            per_style=args.pieces,
            bars=args.bars,
            seed=args.seed,
            out=args.outdir,
            progress=progress,
        )
    print(report.table())
    return 0


def _eval_instructions(args: argparse.Namespace) -> int:
    from composer.evaluate.instructions import eval_instructions
    from composer.paths import DEFAULT_MODEL

    with progress_bar() as progress:
        report = eval_instructions(
            args.model or DEFAULT_MODEL,
            n=args.instructions,
            bars=args.bars,
            seed=args.seed,
            free_pieces=args.free,
            out=args.outdir,
            progress=progress,
        )
    print(report.table())
    return 0


def _eval_requests(args: argparse.Namespace) -> int:
    from composer.evaluate.requests import eval_requests

    with progress_bar() as progress:
        report = eval_requests(
            args.battery, duration=args.duration, seed=args.seed, model=args.model,
            videos=args.videos, out=args.outdir, progress=progress,
        )  # fmt: skip
    _show(report.table(), args.output)
    return 0


def _eval_edit(args: argparse.Namespace) -> int:
    from composer.evaluate.editing import eval_edit

    with progress_bar() as progress:
        report = eval_edit(args.files, trials=args.trials, seed=args.seed, progress=progress)
    _show(report.table(), args.output)
    return 0


def _eval_infill(args: argparse.Namespace) -> int:
    from composer.evaluate.infilling import eval_infill
    from composer.paths import DEFAULT_MODEL

    with progress_bar() as progress:
        report = eval_infill(
            args.model or DEFAULT_MODEL, args.cache, split=args.split, spans=args.spans,
            seam_spans=args.seam_spans, seed=args.seed, progress=progress,
        )  # fmt: skip
    _show(report.table(), args.output)
    return 0


def _eval_musicality(args: argparse.Namespace) -> int:
    import shlex

    from composer.evaluate.musicality import eval_musicality

    with progress_bar() as progress:
        report = eval_musicality(
            args.battery, videos=args.videos, seeds=args.seeds, duration=args.duration,
            model=args.model, scores=args.scores, out=args.outdir,
            corpus_per_style=args.corpus_per_style,
            command=shlex.join(["composer", *sys.argv[1:]]), progress=progress,
        )  # fmt: skip
    _show(report.table(), args.output)
    return 0


def _bench_edit(args: argparse.Namespace) -> int:
    from composer.bench import bench_edit

    _show(bench_edit(runs=args.runs).report(), args.output)
    return 0


def _bench_search(args: argparse.Namespace) -> int:
    from composer.bench import bench_search

    _show(bench_search(pieces=args.pieces, queries=args.queries).report(), args.output)
    return 0


def _show(text: str, output: Path | None) -> None:
    """Print a report; with ``output``, also write it there headed by the command as typed."""
    import shlex

    from composer.outputs import atomic_write_text

    print(text)
    if output:
        command = shlex.join(["composer", *sys.argv[1:]])
        atomic_write_text(output, f"$ {command}\n{text}\n")


def _eval_retrieval(args: argparse.Namespace) -> int:
    from composer.evaluate.retrieval import eval_retrieval
    from composer.paths import DEFAULT_LIBRARY

    with progress_bar() as progress:
        report = eval_retrieval(
            args.library or DEFAULT_LIBRARY,
            pieces=args.pieces,
            seed=args.seed,
            split=args.split,
            progress=progress,
        )
    _show(report.table(), args.output)
    return 0


def _bench_compose(args: argparse.Namespace) -> int:
    from composer.bench import bench_compose

    print(bench_compose(args.video, model=args.model).report())
    return 0


def _bench_analyze(args: argparse.Namespace) -> int:
    from composer.bench import bench_analyze

    print(bench_analyze(args.video, repeat=args.repeat).report())
    return 0
