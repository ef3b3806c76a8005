"""A checkpoint's model card (README.md), written from what its composer.json records."""

from __future__ import annotations

import json
from pathlib import Path

from composer.model.checkpoint import SPEC_FILE
from composer.outputs import atomic_write_text
from composer.train.manifest import Manifest


def write_model_card(
    checkpoint: str | Path,
    manifest: Manifest | None = None,
    command: str = "",
    results: str = "",
) -> Path:
    """Write ``checkpoint``/README.md: data, size, training, validation loss, how to reproduce.

    ``manifest`` adds counts per style and skip reasons; ``command`` is the training command;
    ``results`` is free text (evaluation figures with the commands that produced them).
    """
    folder = Path(checkpoint)
    meta = json.loads((folder / SPEC_FILE).read_text())
    spec, info = meta["spec"], meta.get("info", {})
    cfg = info.get("train_config", {})
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    history = info.get("history", [])
    lines = [
        f"# {folder.name}",
        "",
        "A mixture-of-experts decoder that writes multi-voice music as composer's REMI tokens "
        "(voice roles as programs), steered by style, key, meter, per-bar intensity, hit and "
        "section control tokens. Trained by `composer train`.",
        "",
        "## Model",
        "",
        f"- transformers `{spec['arch']}` architecture: {spec['layers']} layers, hidden "
        f"{spec['hidden']}, {spec['heads']} heads ({spec['kv_heads']} key/value), "
        f"{spec['experts']} experts of width {spec['expert_hidden']}, top-"
        f"{spec['experts_per_token']} routing, context {spec['context']} tokens",
        f"- {info.get('parameters', 0) / 1e6:.2f}M parameters; weights "
        f"{weights / 1e6:.1f} MB (bf16 safetensors)",
        f"- tokenizer `{spec['tokenizer']}` (vocabulary hash `{spec['tokenizer_hash']}`, "
        f"{spec['vocab_size']} tokens): `tokenizers/{spec['tokenizer']}.json`",
        "",
        "## Data",
        "",
    ]
    data = info.get("data", {})
    held = data.get("min_held_out", 0)
    top_up = (
        f", each style's val and test topped up to min({held}, pieces // 8); "
        f"held-out digest {data.get('held_out', '?')}"
        if held
        else ""
    )
    lines.append(
        f"- {data.get('pieces', 0)} pieces, {data.get('tokens', 0):,} tokens; split by piece "
        f"with seed {data.get('seed', 0)} (train / val / test by a hash of the piece id{top_up}); "
        f"{data.get('skipped', 0)} pieces skipped"
    )
    if manifest is not None:
        lines.append("- per style (pieces, tokens):")
        for name, c in sorted(manifest.styles.items(), key=lambda kv: -kv[1].tokens):
            lines.append(f"  - {name}: {c.pieces}, {c.tokens:,}")
        lines.append(
            "- per split (pieces, tokens): "
            + "; ".join(f"{k} {c.pieces}, {c.tokens:,}" for k, c in sorted(manifest.splits.items()))
        )
        reasons: dict[str, int] = {}
        for reason in manifest.skipped.values():
            if reason.startswith("meter"):
                kind = "meter not in the vocabulary"
            elif reason.startswith("duplicate"):
                kind = "duplicate"
            else:
                kind = reason.split(":")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        lines.append(
            "- skipped: "
            + ", ".join(f"{n} {k}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        )
        if manifest.meters_rewritten:
            lines.append(
                "- meters rewritten to an equal-length one in the vocabulary: "
                + ", ".join(f"{k} ({n})" for k, n in sorted(manifest.meters_rewritten.items()))
            )
    lines.append(
        "- augmentation: every window transposed on the fly by a random shift that keeps "
        "the piece in range"
    )
    if textures := info.get("style_roles"):
        lines.append(
            "- voices per style (roles most of the style's train pieces write; a request that "
            "names no voices gets these): "
            + "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in sorted(textures.items()))
        )
    lines += [
        "",
        "## Training",
        "",
        f"- hardware: {info.get('hardware', '?')}; {info.get('minutes', 0)} minutes; "
        f"{info.get('steps', 0)} steps, {info.get('tokens_seen', 0):,} tokens seen "
        f"({info.get('tokens_seen', 0) / max(info.get('train_tokens_per_epoch', 1), 1):.2f} "
        "epochs)",
        f"- AdamW (betas 0.9, 0.95, weight decay {cfg.get('weight_decay')}), peak learning "
        f"rate {cfg.get('lr')} with {cfg.get('warmup_steps')} warm-up steps and cosine decay to "
        f"{cfg.get('min_lr_ratio')}x, batch {cfg.get('batch_size')} x {cfg.get('seq_len')} "
        f"tokens x {cfg.get('grad_accum')} accumulation, {cfg.get('mixed_precision')} autocast, "
        f"router load-balancing loss {spec.get('router_aux_loss_coef')}",
        "",
        "| step | epoch | minutes | train loss | validation loss (nats/token) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h in history:
        lines.append(
            f"| {h['step']} | {h['epoch']} | {h['minutes']} | {h['train_loss']} | {h['val_loss']} |"
        )
    if results:
        lines += ["", "## Evaluation", "", results.strip()]
    if command:
        lines += ["", "## Reproduce", "", "```", command.strip(), "```"]
    path = folder / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def write_adapter_card(folder: str | Path, name: str | None = None) -> Path:
    """Write an adapter folder's README.md from its adapter.json (in place of peft's empty
    template): what it was trained on, how long, what it buys, and how to use and remake it.
    ``name``: the adapter's name when ``folder`` is a staging folder named otherwise."""
    folder = Path(folder)
    meta = json.loads((folder / "adapter.json").read_text())
    cfg, info = meta["config"], meta.get("info", {})
    name, model = name or folder.name, folder.parent.parent.name
    instruct = (folder / "instruct.json").exists()
    size = sum(f.stat().st_size for f in folder.iterdir() if f.name != "README.md")
    lines = [f"# {model} adapter: {name}", ""]
    if instruct:
        lines += [
            "Instruction tuning: a LoRA adapter trained together with a prefix encoder that turns "
            "an instruction's all-MiniLM-L6-v2 embedding into prefix vectors, the anchors a "
            "text is blended from (`anchors.txt`) and the instruction reader (`reader.npz`). "
            "See composer/model/instruct.py.",
            "",
            "- Use: `composer generate --instruction TEXT --adapter instruct`",
            "- Remake: `composer train --instruct --force --minutes "
            f"{info.get('train_config', {}).get('minutes', 14):g}`",
            f"- Validation loss with another window's instruction: "
            f"{info.get('mismatched_val_loss', '?')} nats/token (what the instruction is worth)",
        ]
    elif info.get("layout"):  # the infill adapter (composer.train.infill)
        lines += [
            "Infilling: a LoRA adapter that writes bars between the bars around them, trained on "
            "fill-in-the-middle spans of 1-8 bars of the corpus cache's training pieces, laid "
            "out as `BOS Style Key <bars after> EOS <bars before> <span>` (composer/model/"
            "infill.py); the loss is on the span's tokens alone.",
            "",
            "- Use: `composer edit SCORE --bars 9-12 --prompt TEXT` (composer.edit.span)",
            "- Remake: `composer train --infill --force --minutes "
            f"{info.get('train_config', {}).get('max_minutes', 50):g}`",
            f"- Validation spans: {info.get('val_spans', '?')}; the base's figure below reads "
            "them in the same layout, untrained for it",
        ]
    else:
        style = info.get("style", name)
        pieces = info.get("pieces", {})
        data = info.get("data", "?")
        remake = f"composer train --adapter {name} --force"
        if isinstance(data, list):  # a user's folders, not the corpus cache
            remake += f" --style {style} --data " + " ".join(data)
        schedule = info.get("train_config", {})
        if "epochs" in schedule:
            remake += f" --epochs {schedule['epochs']:g}"
        if schedule.get("max_minutes"):  # the time limit shapes the schedule: part of the recipe
            remake += f" --minutes {schedule['max_minutes']:g}"
        contrast = info.get("contrast", {})
        if contrast.get("scale", 1) != 1:
            remake += f" --guidance {contrast['scale']:g}"
        if contrast.get("given"):
            remake += f" --against {contrast['against']}"
        lines += [
            f"A LoRA style adapter for `{model}`, trained on {pieces.get('train', '?')} "
            f"{style} pieces ({pieces.get('val', '?')} more held out for validation) from "
            f"`{' '.join(data) if isinstance(data, list) else data}`.",
            "",
            f"- Use: `composer generate --style {style} --adapter {name}` (or `--adapter auto`)",
            f"- Remake: `{remake}`",
        ]
    attention, experts = ", ".join(cfg["attention"]), ", ".join(cfg["experts"])
    # The instruct trainer records its validation loss; the style trainer, a history by epoch.
    val = info.get("val_loss") or (info.get("history") or [{}])[-1].get("val_loss", "?")
    lines += [
        f"- LoRA rank {cfg['rank']}, alpha {cfg['alpha']}, on {attention} and the fused "
        f"experts ({experts}); {size / 2**20:.2f} MB; merged into the base before decoding",
        f"- Training: {info.get('steps', '?')} steps in {info.get('minutes', '?')} min on "
        f"{info.get('hardware', '?')}",
        f"- Validation loss: {info.get('base_val_loss', '?')} nats/token for the base, "
        f"{val} with this adapter, on the same windows",
        *_guidance_line(info),
        f"- Base tokenizer hash: `{meta.get('base_tokenizer_hash', '?')}`",
        f"- Base weights (sha256 of model.safetensors): `{meta.get('base_weights') or '?'}`",
        "",
    ]
    path = folder / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _guidance_line(info: dict) -> list[str]:
    """The card's line on a style adapter's guidance away from its neighbouring style."""
    c = info.get("contrast")
    if not c:
        return []
    how = "named with --against" if c.get("given") else "the style nearest its validation windows"
    setting = "`composer train --adapter NAME --guidance G [--against STYLE] --guidance-only`"
    if c["scale"] == 1:
        return [f"- Decoding: unguided ({c['against']} is {how}; {setting} guides away from it)"]
    return [
        f"- Decoding: guided away from {c['against']} ({how}) at {c['scale']:g}; {setting} sets it"
    ]
