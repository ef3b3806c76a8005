"""Style adapters: peft LoRA adapters over the decoder, merged before decoding.

An adapter is a folder beside its base checkpoint, ``<model>/adapters/<name>/``, holding what
peft's ``save_pretrained`` writes (``adapter_config.json``, ``adapter_model.safetensors``) and
``adapter.json`` (the AdapterConfig, the base's tokenizer hash and weights digest, and the
training figures).
LoRA reaches attention through ``target_modules`` and the fused expert tensors (transformers 5:
``mlp.experts.gate_up_proj`` (E, 2I, H), ``mlp.experts.down_proj`` (E, H, I)) through
``target_parameters``. Decoding uses the merged weights (``merge_and_unload``): an unmerged
expert LoRA re-runs its low-rank products at every step, and a merged model is a plain
transformers model that the lean decoder reads unchanged. Merged checkpoints are cached in
memory per (base, adapter), so a style's adapter is merged once per process.

A style adapter also records its style's nearest neighbour, the other style token under which
the base finds the style's validation windows likeliest, and a guidance scale away from it
(``StyleContrast``, in ``adapter.json``'s info; scale 1, the default, is off). The shipped
adapters' scales were chosen on a tuning draw of ``composer eval styles`` (README).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from composer.errors import ComposerError
from composer.model.checkpoint import Checkpoint
from composer.progress import log
from composer.types import StyleContrast

ADAPTERS_DIR = "adapters"
ADAPTER_META = "adapter.json"
MAX_ADAPTER_BYTES = 4 * 1024 * 1024
AUTO = "auto"  # as an adapter name: the one named after the requested style, if any
INSTRUCT = "instruct"  # the instruct adapter (composer.model.instruct)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CONTRAST = "contrast"  # the key of a style adapter's StyleContrast in adapter.json's info


@dataclass(frozen=True)
class AdapterConfig:
    """LoRA shape: rank and scale, and the attention modules and expert tensors it adapts.

    Rank 8 on all six targets of the shipped model is 651k parameters: 2.6 MB as float32.
    """

    rank: int = 8
    alpha: int = 16
    attention: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    experts: tuple[str, ...] = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj")

    def lora(self):
        """The peft ``LoraConfig`` (dropout 0: peft's parameter LoRA does not support it)."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=0.0,
            target_modules=list(self.attention),
            target_parameters=list(self.experts),
            task_type="CAUSAL_LM",
        )


def adapter_path(model: str | Path, name: str) -> Path:
    """Where adapter ``name`` of the checkpoint folder ``model`` lives."""
    if not _NAME.match(name) or name in (AUTO, "none"):
        raise ComposerError(
            None, f"bad adapter name {name!r}: use letters, digits, '_', '-' or '.'"
        )
    return Path(model) / ADAPTERS_DIR / name


def list_adapters(model: str | Path) -> list[str]:
    """Names of the adapters saved beside the checkpoint ``model``."""
    folder = Path(model) / ADAPTERS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / ADAPTER_META).exists())


def style_adapter(model: str | Path, style: str) -> str | None:
    """The adapter named after ``style`` when the checkpoint has one, else None."""
    return style if style in list_adapters(model) else None


def read_meta(folder: Path) -> dict:
    """``adapter.json`` of an adapter folder, or a one-line ComposerError."""
    if not folder.is_dir():
        raise ComposerError(folder, "no such adapter (train one with 'composer train --adapter')")
    try:
        meta = json.loads((folder / ADAPTER_META).read_text())
        AdapterConfig(**{k: tuple(v) if isinstance(v, list) else v
                         for k, v in meta["config"].items()})  # fmt: skip
    except FileNotFoundError:
        raise ComposerError(folder, f"not a composer adapter (no {ADAPTER_META})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ComposerError(folder / ADAPTER_META, f"corrupt adapter metadata ({e})") from None
    return meta


def merge_adapter(base: Checkpoint, folder: str | Path) -> Checkpoint:
    """A new Checkpoint whose model is ``base.model`` with the adapter at ``folder`` merged in.

    ``base`` is left unchanged (its model is copied first). The merge reads peft's files but
    not peft itself, whose import alone takes about 2 s: W += scale * B @ A per attention
    projection, and per expert for the fused expert tensors (tests check the result against
    peft's own forward).
    """
    folder = Path(folder)
    meta = read_meta(folder)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).exists():
            raise ComposerError(folder, f"incomplete adapter (no {name})")
    if meta.get("base_tokenizer_hash") != base.spec.tokenizer_hash:
        raise ComposerError(
            folder, "adapter was trained on a checkpoint with another tokenizer; retrain it"
        )
    # Adapters from before the digest, and bases built in memory, carry none to compare.
    trained_on = meta.get("base_weights")
    if trained_on and base.weights_digest and trained_on != base.weights_digest:
        raise ComposerError(
            folder, "adapter was trained on other base weights than this checkpoint's; retrain it"
        )
    model = copy.deepcopy(base.model)
    try:
        _merge_lora(model, folder)
    except Exception as e:  # safetensors and torch raise many types for a damaged or foreign file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ComposerError(folder, f"corrupt or mismatched adapter weights ({msg})") from None
    model.eval()
    info = {**base.info, "adapter": folder.name}
    return Checkpoint(model=model, spec=base.spec, tokenizer=base.tokenizer, info=info)


@torch.no_grad()
def _merge_lora(model: torch.nn.Module, folder: Path) -> None:
    """Add the LoRA products of peft's ``adapter_model.safetensors`` to ``model`` in place."""
    from safetensors.torch import load_file

    cfg = json.loads((folder / "adapter_config.json").read_text())
    if cfg.get("peft_type") != "LORA" or cfg.get("use_dora") or cfg.get("fan_in_fan_out"):
        raise ValueError("not a plain LoRA adapter")
    rank = cfg["r"]
    scale = cfg["lora_alpha"] / (rank**0.5 if cfg.get("use_rslora") else rank)
    factors: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in load_file(folder / "adapter_model.safetensors").items():
        head, _, tail = key.rpartition(".lora_")  # tail: "A.weight" or "B.weight"
        factors.setdefault(head, {})[tail[0]] = t.float()
    experts = model.config.num_local_experts
    for head, f in factors.items():
        # "base_model.model.<module path>", with ".base_layer" where peft nested two wrappers
        path = head.removeprefix("base_model.model.").replace(".base_layer", "")
        module = model.get_submodule(path)
        a, b = f["A"], f["B"]  # (r, in), (out, r); for experts (E r, in), (out, r E)
        if isinstance(module, torch.nn.Linear):
            module.weight += (scale * b @ a).to(module.weight.dtype)
            continue
        a = a.reshape(experts, -1, a.shape[-1])  # (E, r, in)
        b = b.reshape(b.shape[0], -1, experts)  # (out, r, E), peft's layout
        delta = torch.einsum("ore,eri->eoi", b, a) * scale  # (E, out, in)
        # Which fused tensor: the one of that shape ((E, out, in) as transformers 5 stores
        # experts); exactly one must match.
        params = [p for _, p in module.named_parameters(recurse=False) if p.shape == delta.shape]
        if len(params) != 1:
            raise ValueError(f"{path}: no single expert tensor of shape {tuple(delta.shape)}")
        params[0] += delta.to(params[0].dtype)


def style_contrast(
    model: str | Path, name: str | None, scale: float | None = None
) -> StyleContrast | None:
    """Adapter ``name``'s guidance away from its style's neighbour, with ``scale`` in place of
    the one it was saved with when given; None when there is no adapter, the adapter records
    no neighbour, or the scale is 1."""
    if name is None:
        if scale not in (None, 1.0):
            raise ComposerError(None, "style guidance steers a style adapter: name one")
        return None
    info = read_meta(adapter_path(model, name)).get("info", {})
    saved = info.get(CONTRAST)
    if not saved:
        if scale not in (None, 1.0):
            raise ComposerError(
                adapter_path(model, name), "adapter records no neighbouring style to guide from"
            )
        return None
    contrast = StyleContrast(saved["against"], float(saved["scale"] if scale is None else scale))
    return contrast if contrast.active else None


_MERGED: dict[tuple[str, str], Checkpoint] = {}


def cached_adapter(base: Checkpoint, model: str | Path, name: str) -> Checkpoint:
    """``base`` (loaded from ``model``) with adapter ``name`` merged, merged once per process."""
    key = (str(Path(model).resolve()), name)
    if key not in _MERGED:
        _MERGED[key] = merge_adapter(base, adapter_path(model, name))
        log.info("merged adapter %s into %s", name, model)
    return _MERGED[key]


def forget_adapters() -> None:
    """Drop the merged checkpoints."""
    _MERGED.clear()
