"""``composer train`` end to end: data (corpus or the user's folders) -> token cache -> model."""

from __future__ import annotations

import hashlib
from pathlib import Path

from composer.errors import ComposerError
from composer.paths import DEFAULT_MODEL, token_cache, user_data
from composer.progress import ProgressFn, no_progress
from composer.tokens import ScoreTokenizer, TokenizerSpec
from composer.train.card import write_model_card
from composer.train.data import TokenCache, build_cache
from composer.train.trainer import TrainConfig, TrainResult, train


def load_data(
    data: list[Path] | None,
    style: str,
    cache: Path | None,
    tok: ScoreTokenizer,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: ProgressFn = no_progress,
) -> TokenCache:
    """The token cache of ``data`` folders (their pieces take ``style``) or, without them, of
    the music21 corpus at ``cache`` (None: the default); built first when missing."""
    cache = Path(cache) if cache is not None else token_cache()
    if data:
        for folder in data:
            if not folder.exists():
                raise ComposerError(folder, "no such folder")
        names = [str(p.resolve()) for p in data] + [style]
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
        cache = cache.with_name(f"data-user-{digest[:10]}")
    if not (cache / "pieces.json").exists():
        from composer.music.corpus import iter_corpus, iter_files

        pieces = (
            iter_files(data, style=style)
            if data
            else iter_corpus(progress=progress, workers=workers)
        )
        build_cache(pieces, tok, cache, seed=seed, progress=progress)
    return TokenCache.load(cache, tok)


def run_training(
    data: list[Path] | None = None,
    config: Path | None = None,
    cache: Path | None = None,
    out: Path | None = None,
    minutes: float | None = None,
    epochs: float | None = None,
    resume: bool = False,
    workers: int = 1,
    style: str = "other",
    progress: ProgressFn = no_progress,
) -> TrainResult:
    """Build the token cache if it is missing, then train and save a checkpoint.

    ``data`` folders (MIDI, MusicXML, ABC, Humdrum) replace the music21 corpus; their pieces
    take ``style``, one of the tokenizer's styles.
    """
    import dataclasses

    tok = ScoreTokenizer.named(TokenizerSpec().name)
    cfg = TrainConfig.from_json(config.read_text()) if config else TrainConfig()
    if minutes is not None:
        cfg = dataclasses.replace(cfg, max_minutes=minutes)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    if style not in tok.spec.styles:
        raise ComposerError(
            None, f"unknown style {style!r}; valid styles: " + ", ".join(tok.spec.styles)
        )
    # A new model goes to the user's own folder unless --out names one: training never replaces
    # the shipped model unasked.
    name = data[0].resolve().name if data else DEFAULT_MODEL.name
    out = out or user_data() / "models" / name
    data_cache = load_data(
        data, style, cache, tok, seed=cfg.seed, workers=workers, progress=progress
    )
    result = train(data_cache, tok, cfg, out, resume=resume, progress=progress)
    command = ["composer train"]
    if data:
        command.append("--data " + " ".join(str(p) for p in data) + f" --style {style}")
    if config:
        command.append(f"--config {config}")
    if minutes is not None:
        command.append(f"--minutes {minutes:g}")
    if epochs is not None:
        command.append(f"--epochs {epochs:g}")
    write_model_card(out, data_cache.manifest, command=" ".join(command))
    return result
