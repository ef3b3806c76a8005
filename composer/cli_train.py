"""The ``composer train`` command: the decoder, a style adapter, or the instruct adapter."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from composer.progress import progress_bar


def add_train_command(sub) -> None:
    """Add ``train`` to the parser's subparsers ``sub``."""
    t = sub.add_parser("train", help="train the decoder on the music21 corpus or your folders")
    t.add_argument(
        "--data",
        type=Path,
        nargs="*",
        help="folders of MIDI, MusicXML, ABC or Humdrum (default: music21's corpus)",
    )
    t.add_argument("--config", type=Path, help="TrainConfig as JSON")
    t.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="token cache folder (built when missing)",
    )
    t.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint folder to write (default: ~/.local/share/composer/models/NAME)",
    )
    t.add_argument("--minutes", type=float, help="stop after this long (and save)")
    t.add_argument("--epochs", type=float, help="passes over the training tokens")
    t.add_argument("--resume", action="store_true", help="continue from the saved state")
    t.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="processes that parse the corpus when the token cache is built",
    )
    t.add_argument(
        "--style", default="other", help="style token for the pieces in --data (default: other)"
    )
    t.add_argument(
        "--adapter",
        metavar="NAME",
        help="train a LoRA style adapter NAME from --model, saved in MODEL/adapters/NAME "
        "(without --data, NAME is a style and the corpus' pieces of that style are used)",
    )
    t.add_argument(
        "--instruct",
        action="store_true",
        help="train the instruct adapter (prefix vectors from a MiniLM embedding of the "
        "instruction, with LoRA, and the instruction reader) from --model on the corpus cache",
    )
    t.add_argument(
        "--infill",
        action="store_true",
        help="train the infill adapter (bars written between the bars around them, for "
        "'composer edit --bars') from --model on the corpus cache",
    )
    t.add_argument(
        "--reader-only",
        action="store_true",
        help="with --instruct: fit the instruction reader again, leaving the decoder's adapter",
    )
    t.add_argument(
        "--guidance",
        type=float,
        default=1.0,
        metavar="G",
        help="with --adapter: the scale of the guidance away from the style's nearest "
        "neighbour that decoding with the adapter uses (default 1: none; see README)",
    )
    t.add_argument(
        "--against",
        metavar="STYLE",
        help="with --adapter: guide away from this style instead of the nearest one",
    )
    t.add_argument(
        "--guidance-only",
        action="store_true",
        help="with --adapter: measure the neighbour again and save --guidance, leaving the "
        "adapter's weights",
    )
    t.add_argument(
        "--model", type=Path, help="base checkpoint for --adapter/--instruct (default: shipped)"
    )
    t.add_argument("--force", action="store_true", help="replace an existing adapter")
    t.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    from composer.train.run import run_training

    if args.adapter:
        return _train_adapter(args)
    if args.instruct:
        return _train_instruct(args)
    if args.infill:
        return _train_infill(args)
    with progress_bar() as progress:
        res = run_training(
            data=args.data,
            config=args.config,
            cache=args.cache,
            out=args.out,
            minutes=args.minutes,
            epochs=args.epochs,
            resume=args.resume,
            workers=args.workers,
            style=args.style,
            progress=progress,
        )
    print(
        f"wrote {res.checkpoint}: {res.steps} steps, {res.tokens_seen} tokens in "
        f"{res.minutes:.1f} min, validation loss {res.val_loss:.4f} nats/token"
    )
    return 0


def _train_adapter(args: argparse.Namespace) -> int:
    from composer.paths import DEFAULT_MODEL
    from composer.train.adapter import set_guidance, train_adapter

    if args.guidance_only:
        contrast = set_guidance(
            args.adapter, args.guidance, against=args.against,
            model=args.model or DEFAULT_MODEL, data=args.data,
            style=args.style, cache=args.cache, workers=args.workers,
        )  # fmt: skip
        print(f"adapter {args.adapter}: guidance {contrast.scale:g} away from {contrast.against}")
        return 0
    with progress_bar() as progress:
        res = train_adapter(
            args.adapter,
            model=args.model or DEFAULT_MODEL,
            data=args.data,
            style=args.style,
            cache=args.cache,
            minutes=args.minutes,
            epochs=args.epochs,
            force=args.force,
            workers=args.workers,
            guidance=args.guidance,
            against=args.against,
            progress=progress,
        )
    print(
        f"wrote {res.path} ({res.size_bytes / 2**20:.2f} MB): {res.steps} steps in "
        f"{res.minutes:.1f} min, validation loss {res.val_loss:.4f} nats/token "
        f"(base {res.base_val_loss:.4f})"
    )
    return 0


def _train_instruct(args: argparse.Namespace) -> int:
    import dataclasses

    from composer.paths import DEFAULT_MODEL
    from composer.train.instruct import InstructTrainConfig, refit_reader, train_instruct

    if args.reader_only:
        accuracy = refit_reader(args.model or DEFAULT_MODEL)
        print(
            "reader on held-out phrasings: "
            + ", ".join(f"{k} {v:.0%}" for k, v in accuracy.items())
        )
        return 0
    config = InstructTrainConfig()
    if args.minutes:
        config = dataclasses.replace(config, minutes=args.minutes)
    with progress_bar() as progress:
        res = train_instruct(
            model=args.model or DEFAULT_MODEL,
            cache=args.cache,
            config=config,
            force=args.force,
            progress=progress,
        )
    print(
        f"wrote {res.path}: {res.steps} steps in {res.minutes:.1f} min; validation loss "
        f"{res.matched_loss:.4f} nats/token with each window's instruction, "
        f"{res.mismatched_loss:.4f} with another's, base {res.base_loss:.4f}; reader on "
        f"held-out phrasings: " + ", ".join(f"{k} {v:.0%}" for k, v in res.reader_accuracy.items())
    )
    return 0


def _train_infill(args: argparse.Namespace) -> int:
    from composer.paths import DEFAULT_MODEL
    from composer.train.infill import train_infill

    with progress_bar() as progress:
        res = train_infill(
            model=args.model or DEFAULT_MODEL, cache=args.cache, minutes=args.minutes,
            force=args.force, workers=args.workers, progress=progress,
        )  # fmt: skip
    print(
        f"wrote {res.path} ({res.size_bytes / 2**20:.2f} MB): {res.steps} steps in "
        f"{res.minutes:.1f} min, loss on validation spans {res.val_loss:.4f} nats/token "
        f"(base reading the same layout {res.base_val_loss:.4f})"
    )
    return 0
