"""``composer train --adapter NAME``: a LoRA style adapter trained from a base checkpoint.

The adapter is trained by the same loop as the decoder (composer.train.trainer.train, given
the peft-wrapped base), on one style's pieces of the corpus token cache, or on a user's own
folders. The base's and the adapter's validation losses on the same windows are both recorded
in the adapter's ``adapter.json``, so what the adapter buys is measured where it is saved.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from composer.errors import ComposerError
from composer.model.adapters import (
    ADAPTER_META,
    CONTRAST,
    MAX_ADAPTER_BYTES,
    AdapterConfig,
    StyleContrast,
    adapter_path,
    read_meta,
)
from composer.model.checkpoint import Checkpoint, load_checkpoint
from composer.outputs import atomic_write_text, make_readable
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER
from composer.train.card import write_adapter_card
from composer.train.data import TokenCache, eval_windows
from composer.train.run import load_data
from composer.train.trainer import TrainConfig, evaluate, train


@dataclass(frozen=True)
class AdapterTrainConfig:
    """One adapter run: the LoRA shape and the training schedule. Saved in adapter.json."""

    lora: AdapterConfig = AdapterConfig()
    # LoRA takes a higher learning rate than pre-training and a short warm-up: the run is a
    # few CPU minutes, and B starts at zero so the first steps cannot disturb the base.
    train: TrainConfig = TrainConfig(
        seq_len=512, batch_size=8, lr=2e-3, warmup_steps=10, epochs=1.0, max_minutes=5.0,
        eval_every_epochs=1.0, checkpoint_every_steps=10**9,
    )  # fmt: skip


@dataclass
class AdapterResult:
    path: Path
    name: str
    style: str | None  # the corpus style trained on (None: a user's folders)
    steps: int
    minutes: float
    base_val_loss: float  # nats/token of the base on the validation windows (nan: none)
    val_loss: float  # the same windows with the adapter
    size_bytes: int


def train_adapter(
    name: str,
    *,
    model: str | Path = DEFAULT_MODEL,
    data: list[Path] | None = None,
    style: str = "other",
    cache: Path | None = None,
    config: AdapterTrainConfig = AdapterTrainConfig(),
    minutes: float | None = None,
    epochs: float | None = None,
    force: bool = False,
    workers: int = 1,
    guidance: float = 1.0,
    against: str | None = None,
    progress: ProgressFn = no_progress,
) -> AdapterResult:
    """Train adapter ``name`` on the base checkpoint ``model`` and save it beside the model.

    Without ``data``, ``name`` must be a style of the tokenizer and the corpus cache's pieces
    of that style are used; with ``data`` folders, all their pieces (given the style token
    ``style``) are. The style's nearest neighbour is measured and saved with the adapter, with
    ``guidance`` as the scale of the guidance away from it (1: off; composer.model.adapters);
    ``against`` names the neighbour instead.
    """
    out = adapter_path(model, name)
    if out.exists() and not force:
        raise ComposerError(out, "adapter already exists (pass --force to replace it)")
    base = load_checkpoint(model)
    tok = base.tokenizer
    cfg = config.train
    subset, pieces_style = _adapter_data(
        name, base, model, data, style, cache, workers, progress, seed=cfg.seed
    )
    if minutes is not None:
        cfg = dataclasses.replace(cfg, max_minutes=minutes)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    cfg = dataclasses.replace(cfg, model=base.spec)
    n_train, n_val = len(subset.split("train")), len(subset.split("val"))
    if not n_train:
        raise ComposerError(subset.folder, f"no training pieces for adapter {name!r}")
    log.info("adapter %s: %d train pieces, %d val pieces", name, n_train, n_val)
    val = eval_windows(subset, "val", cfg.seq_len)
    autocast = cfg.mixed_precision == "bf16"
    base_val = evaluate(base.model, val, tok.pad_id, autocast=autocast) if val else math.nan
    own = pieces_style or style
    contrast = _contrast(base, val or eval_windows(subset, "train", cfg.seq_len), own,
                         guidance, against)  # fmt: skip
    peft_model = wrap_for_training(base, config.lora, seed=cfg.seed)

    def save(trained, info: dict) -> None:
        info = {
            **info,
            "adapter": name,
            "style": pieces_style or style,
            "data": [str(p) for p in data] if data else str(subset.folder),
            "pieces": {"train": n_train, "val": n_val},
            "base_val_loss": round(base_val, 4),
            "adapter_train_config": _jsonable(config),
            CONTRAST: contrast,
        }
        if not val:  # the trainer scores an empty window list as 0: no measurement at all
            for row in info.get("history", []):
                row["val_loss"] = None
        save_adapter(trained, out, config.lora, base, info)

    # The trainer's resumable state goes beside this staging name, by the token cache rather
    # than into the model folder (it holds the base's weights and the optimiser's moments).
    staging = subset.folder.parent / "adapter-state" / f"{Path(model).resolve().name}-{name}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    result = train(subset, tok, cfg, staging, progress=progress, model=peft_model, save=save)
    size = sum(f.stat().st_size for f in out.iterdir())
    return AdapterResult(
        out,
        name,
        pieces_style,
        result.steps,
        result.minutes,
        base_val,
        result.val_loss if val else math.nan,
        size,
    )


def _adapter_data(
    name: str, base: Checkpoint, model: str | Path, data: list[Path] | None, style: str,
    cache: Path, workers: int, progress: ProgressFn, seed: int = 0,
) -> tuple[TokenCache, str | None]:  # fmt: skip
    """The token cache an adapter trains on (the corpus style ``name``, or ``data`` folders as
    ``style``), and the corpus style it holds (None for a user's folders)."""
    tok = base.tokenizer
    if data:
        if style not in tok.spec.styles:
            raise ComposerError(
                None, f"unknown style {style!r}; valid styles: " + ", ".join(tok.spec.styles)
            )
        pieces_style = None
    elif name in tok.spec.styles:
        pieces_style = name
    else:
        raise ComposerError(
            None,
            f"adapter {name!r} is not a style ({', '.join(tok.spec.styles)}): "
            "give --data folders to train it on",
        )
    full = load_data(data, style, cache, tok, seed=seed, workers=workers, progress=progress)
    if not data:  # the corpus: never tune on pieces the base holds out
        full.check_trained_with(base.info, model)
    subset = dataclasses.replace(
        full, pieces=[p for p in full.pieces if pieces_style in (None, p.style)]
    )
    return subset, pieces_style


def style_likelihoods(
    model: torch.nn.Module, tok: ScoreTokenizer, windows: list[np.ndarray], most: int = 64
) -> dict[str, float]:
    """Mean NLL (nats per token after the header) of up to ``most`` of ``windows`` (evenly
    spaced) with each style token of ``tok`` in the header in place of the window's own."""
    pick = [
        windows[i] for i in np.linspace(0, len(windows) - 1, min(most, len(windows))).astype(int)
    ]
    out = {}
    model.eval()
    for style in tok.spec.styles:
        total, count = 0.0, 0
        for w in pick:
            ids = torch.as_tensor(np.asarray(w, np.int64))[None].clone()  # (1, T)
            ids[0, 1] = tok.vocab[f"Style_{style}"]
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            # Predictions of the body only: the style token's own prior is not the music's fit.
            nll = -logp[HEADER - 1 :].gather(-1, ids[0, HEADER:, None])
            total, count = total + float(nll.sum()), count + nll.numel()
        out[style] = round(total / max(count, 1), 4)
    return out


def _contrast(
    base: Checkpoint, windows: list[np.ndarray], own: str, scale: float, against: str | None
) -> dict:
    """The contrast_record against ``own``'s nearest neighbour, the other style token under
    which the base finds ``windows`` likeliest, or against the style ``against`` names."""
    if against is not None and (against == own or against not in base.tokenizer.spec.styles):
        raise ComposerError(
            None, f"cannot guide {own} away from {against!r}; styles: "
            + ", ".join(s for s in base.tokenizer.spec.styles if s != own),
        )  # fmt: skip
    if not windows:
        raise ComposerError(None, "no windows to measure the style's neighbour on")
    nll = style_likelihoods(base.model, base.tokenizer, windows)
    nearest = min((s for s in nll if s != own), key=nll.__getitem__)
    log.info("nearest style to %s: %s (%.4f against %.4f nats/token)", own, nearest,
             nll[nearest], nll[own])  # fmt: skip
    contrast = StyleContrast(against or nearest, scale)
    return contrast_record(contrast, nll, given=against is not None)


def set_guidance(
    name: str,
    scale: float,
    *,
    against: str | None = None,
    model: str | Path = DEFAULT_MODEL,
    data: list[Path] | None = None,
    style: str = "other",
    cache: Path | None = None,
    workers: int = 1,
    progress: ProgressFn = no_progress,
) -> StyleContrast:
    """Measure adapter ``name``'s nearest style again (or take ``against``) and save ``scale``
    as its guidance away from it, leaving the LoRA weights as they are (``composer train
    --adapter NAME --guidance-only``)."""
    folder = adapter_path(model, name)
    info = read_meta(folder).get("info", {})
    base = load_checkpoint(model)
    subset, pieces_style = _adapter_data(name, base, model, data, style, cache, workers, progress)
    seq_len = info.get("train_config", {}).get("seq_len", AdapterTrainConfig().train.seq_len)
    windows = eval_windows(subset, "val", seq_len) or eval_windows(subset, "train", seq_len)
    record = _contrast(base, windows, pieces_style or style, scale, against)
    set_contrast(folder, record)
    return StyleContrast(record["against"], record["scale"])


def _jsonable(config: AdapterTrainConfig) -> dict:
    raw = dataclasses.asdict(config)
    raw["train"].pop("model")  # the base's spec is in the base's own composer.json
    return raw


# --- adapter files ---------------------------------------------------------------------------


def wrap_for_training(base: Checkpoint, config: AdapterConfig, seed: int = 0):
    """A peft model over a copy of ``base.model`` with fresh LoRA weights (B = 0: starts as
    the base); only the LoRA weights require gradients."""
    from peft import get_peft_model

    torch.manual_seed(seed)  # lora_A's initialisation
    model = copy.deepcopy(base.model).float()
    return get_peft_model(model, config.lora())


def save_adapter(
    peft_model, folder: Path, config: AdapterConfig, base: Checkpoint, info: dict, extra=None
):
    """Write the adapter folder atomically (a staging folder, then a rename); refuse > 4 MB.

    ``extra(tmp)`` writes further files into the staging folder (the instruct adapter's).
    """
    if folder.exists() and not (folder / ADAPTER_META).exists():
        raise ComposerError(folder, f"is not an adapter (no {ADAPTER_META}): not replaced")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        # The base is the folder the adapter sits in; peft would record this machine's path.
        for cfg in peft_model.peft_config.values():
            cfg.base_model_name_or_path = folder.parent.parent.name
        peft_model.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        size = sum(f.stat().st_size for f in tmp.iterdir())
        if size > MAX_ADAPTER_BYTES:
            raise ComposerError(
                folder, f"adapter is {size / 2**20:.1f} MB, over the 4 MB limit (lower the rank)"
            )
        meta = {
            "config": dataclasses.asdict(config),
            "base_tokenizer_hash": base.spec.tokenizer_hash,
            "base_weights": base.weights_digest,
            "info": info,
        }
        atomic_write_text(tmp / ADAPTER_META, json.dumps(meta, indent=2) + "\n")
        write_adapter_card(tmp, folder.name)  # peft's own card is an empty template
        make_readable(tmp)
        if folder.exists():  # the old adapter goes aside under a name of this run's, then away
            aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=tmp.parent))
            folder.rename(aside)
            tmp.rename(folder)
            shutil.rmtree(aside)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def contrast_record(
    contrast: StyleContrast, likelihoods: dict[str, float], given: bool = False
) -> dict:
    """``contrast`` as adapter.json's info keeps it: with the per-style likelihoods of the
    style's validation windows, and whether its neighbour was named (``given``) rather than
    the likeliest of them."""
    return {
        **dataclasses.asdict(contrast),
        "given": given,
        "val_nll_by_style": {k: round(v, 4) for k, v in likelihoods.items()},
    }


def set_contrast(folder: Path, record: dict) -> None:
    """Save a ``contrast_record`` in the adapter folder's adapter.json, atomically, and rewrite
    its card."""
    meta = read_meta(folder)
    meta.setdefault("info", {})[CONTRAST] = record
    atomic_write_text(folder / ADAPTER_META, json.dumps(meta, indent=2) + "\n")
    write_adapter_card(folder)
