"""The decoder: a small transformers mixture-of-experts causal LM, saved with its spec.

A checkpoint is a folder: ``config.json`` + ``model.safetensors`` (transformers'
``save_pretrained``, so peft, accelerate and vLLM read it unchanged) and ``composer.json`` (the
ModelSpec, the tokenizer's name and vocabulary hash, the weights' sha256, and how it was trained).
The spec decides the architecture: config.json and the weights' header are checked against it
before any memory is allocated, and the weights against their digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import safetensors
import torch
import transformers
from transformers.core_model_loading import revert_weight_conversion

from composer.errors import ComposerError
from composer.outputs import make_readable
from composer.paths import DEFAULT_MODEL
from composer.progress import log, quiet_loading
from composer.tokens import ScoreTokenizer

SPEC_FILE = "composer.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# What a save replaces in an existing folder: what save_pretrained and save_checkpoint write, and
# the model card (card.py), which describes the old weights. Anything else (adapters/) is kept.
CHECKPOINT_FILES = (CONFIG_FILE, "generation_config.json", WEIGHTS_FILE, SPEC_FILE, "README.md")
ARCHS = ("mixtral", "qwen2_moe", "olmoe")
# Far past any model trained here (13M parameters), yet small enough that building a damaged
# spec's model on the meta device, to compare with the weights' header, takes under a second.
SPEC_MAXIMA = dict(hidden=65536, layers=256, heads=1024, kv_heads=1024, experts=4096,
                   experts_per_token=4096, expert_hidden=1 << 20, shared_expert_hidden=1 << 20,
                   context=1 << 22)  # fmt: skip
# config.json fields that shape the model; each must be present and equal the spec's.
SHAPE_FIELDS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "intermediate_size",
                "moe_intermediate_size", "shared_expert_intermediate_size", "num_local_experts",
                "num_experts", "num_experts_per_tok", "decoder_sparse_step",
                "max_position_embeddings", "tie_word_embeddings")  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """Architecture and size. ``arch`` is a transformers MoE family."""

    # Mixtral-style by measurement: the fastest of the three to train here (bf16, seq 1024,
    # batch 4: mixtral 2806, olmoe 2557, qwen2_moe 2388 tokens/s) and the one FastDecoder runs.
    arch: str = "mixtral"  # mixtral | qwen2_moe | olmoe
    hidden: int = 256
    layers: int = 6
    heads: int = 8
    kv_heads: int = 4
    experts: int = 8
    experts_per_token: int = 2
    expert_hidden: int = 320  # 13.1M parameters in all: 26 MB as bf16 safetensors
    shared_expert_hidden: int = 320  # qwen2_moe only: a dense expert every token uses
    context: int = 1024
    rope_theta: float = 10000.0
    router_aux_loss_coef: float = 0.01
    tokenizer: str = "remi-roles-v1"
    tokenizer_hash: str = ""
    vocab_size: int = 0

    def hf_config(self) -> transformers.PretrainedConfig:
        common = dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=self.context,
            rope_theta=self.rope_theta,
            router_aux_loss_coef=self.router_aux_loss_coef,
            output_router_logits=True,  # the load-balancing loss is added to the LM loss
            tie_word_embeddings=True,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        if self.arch == "qwen2_moe":
            return transformers.Qwen2MoeConfig(
                intermediate_size=self.expert_hidden,
                moe_intermediate_size=self.expert_hidden,
                shared_expert_intermediate_size=self.shared_expert_hidden,
                num_experts=self.experts,
                num_experts_per_tok=self.experts_per_token,
                decoder_sparse_step=1,
                norm_topk_prob=True,
                **common,
            )
        if self.arch == "mixtral":
            return transformers.MixtralConfig(
                intermediate_size=self.expert_hidden,
                num_local_experts=self.experts,
                num_experts_per_tok=self.experts_per_token,
                **common,
            )
        if self.arch == "olmoe":
            return transformers.OlmoeConfig(
                intermediate_size=self.expert_hidden,
                num_experts=self.experts,
                num_experts_per_tok=self.experts_per_token,
                **common,
            )
        raise ValueError(f"unknown arch {self.arch!r}; valid: {', '.join(ARCHS)}")


@dataclass
class Checkpoint:
    """A loaded decoder with the spec and tokenizer it was trained with."""

    model: transformers.PreTrainedModel
    spec: ModelSpec
    tokenizer: ScoreTokenizer
    info: dict = field(default_factory=dict)  # training figures from composer.json
    # sha256 (16 hex) of model.safetensors: adapters record their base's, to refuse another
    weights_digest: str = ""


def build_model(spec: ModelSpec, seed: int = 0) -> transformers.PreTrainedModel:
    """A freshly initialised model for ``spec`` (its vocab_size must be set)."""
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(spec.hf_config())


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(
    model: transformers.PreTrainedModel,
    spec: ModelSpec,
    path: str | Path,
    info: dict | None = None,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """Save weights (in ``dtype``), the HF config and composer.json into folder ``path``.

    An existing folder keeps everything but the checkpoint's own files (CHECKPOINT_FILES).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        state = {k: v.detach().to(dtype) for k, v in model.state_dict().items()}
        model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        meta = {
            "spec": dataclasses.asdict(spec),
            "info": info or {},
            "weights_sha256": _sha256(tmp / WEIGHTS_FILE),
        }
        (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        for f in [tmp, *tmp.iterdir()]:
            make_readable(f)
        if not path.exists():
            tmp.rename(path)
            return path
        for name in CHECKPOINT_FILES:
            if not (tmp / name).exists():
                (path / name).unlink(missing_ok=True)
        # composer.json last: a save cut off part-way leaves weights that do not match the
        # recorded digest, which load_checkpoint refuses instead of loading a mixture.
        for f in sorted(tmp.iterdir(), key=lambda f: f.name == SPEC_FILE):
            os.replace(f, path / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_spec(spec: ModelSpec, where: Path) -> None:
    """Refuse a spec no checkpoint of this project could have, before building anything."""
    if spec.arch not in ARCHS:
        raise ComposerError(where, f"spec arch is {spec.arch!r}, not one of {', '.join(ARCHS)}")
    for name, top in SPEC_MAXIMA.items():
        value = getattr(spec, name)
        if type(value) is not int or not 1 <= value <= top:
            raise ComposerError(
                where, f"spec {name} is {value!r}, not a whole number from 1 to {top}: damaged"
            )
    for name, positive in (("rope_theta", True), ("router_aux_loss_coef", False)):
        value = getattr(spec, name)
        if type(value) not in (int, float) or not 0 <= value < math.inf or positive and not value:
            raise ComposerError(where, f"spec {name} is {value!r}: damaged")
    if spec.hidden % spec.heads or spec.heads % spec.kv_heads:
        raise ComposerError(where, "spec hidden, heads and kv_heads do not divide: damaged")
    if spec.experts_per_token > spec.experts:
        raise ComposerError(where, "spec experts_per_token is more than its experts: damaged")


def _check_weights_header(skeleton: transformers.PreTrainedModel, weights: Path, where: Path):
    """Refuse weights whose tensor names and shapes are not those of the spec's model.

    ``skeleton`` is that model on the meta device. The file holds what save_pretrained writes:
    the names transformers saves in (per-expert tensors where the model fuses them into
    [experts, 2 * expert_hidden, hidden]), or the model's own names; tied copies may be absent.
    """
    try:
        with safetensors.safe_open(weights, "pt") as f:
            stored = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except (safetensors.SafetensorError, OSError):
        raise ComposerError(
            weights, "not a readable safetensors file: truncated or damaged"
        ) from None
    own, tied, seen = {}, {}, set()
    for name, tensor in skeleton.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            tied[name] = list(tensor.shape)
        else:
            own[name] = tensor
            seen.add(id(tensor))
    layouts = [revert_weight_conversion(skeleton, dict(own)), own]
    expected = max(
        ({k: list(v.shape) for k, v in layout.items()} for layout in layouts),
        key=lambda layout: len(layout.keys() & stored.keys()),
    )
    for name, shape in expected.items():
        if name not in stored:
            raise ComposerError(
                where,
                f"spec does not match {weights.name}: it needs tensor {name} {shape}, "
                "which the file lacks",
            )
        if stored[name] != shape:
            raise ComposerError(
                where,
                f"spec does not match {weights.name}: tensor {name} is {stored[name]} "
                f"in the file but {shape} by the spec",
            )
    for name, shape in stored.items():
        if name not in expected and tied.get(name) != shape:
            raise ComposerError(
                where,
                f"spec does not match {weights.name}: the file has tensor {name} {shape}, "
                "which the spec's model does not",
            )


def _check_config_json(path: Path, hf_config: transformers.PretrainedConfig, model_class: str):
    """Refuse a config.json that is missing, unreadable or disagrees with the spec's model."""
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise ComposerError(path, f"missing: a checkpoint holds it beside {WEIGHTS_FILE}") from None
    except (OSError, ValueError):
        raise ComposerError(path, "not readable JSON: damaged") from None
    if not isinstance(stored, dict):
        raise ComposerError(path, "not a JSON object: damaged")
    spec = hf_config.to_dict()
    expected = {k: spec[k] for k in SHAPE_FIELDS if k in spec} | {"architectures": [model_class]}
    for name, value in expected.items():
        if name not in stored:
            raise ComposerError(
                path, f"has no {name} ({SPEC_FILE}'s spec says {value!r}): damaged or incomplete"
            )
        if stored[name] != value or type(stored[name]) is not type(value):
            raise ComposerError(
                path,
                f"{name} is {stored[name]!r} here but {value!r} in {SPEC_FILE}'s spec: "
                "damaged or from another model",
            )


def load_checkpoint(
    path: str | Path = DEFAULT_MODEL,
    dtype: torch.dtype = torch.float32,
    tokenizer: ScoreTokenizer | None = None,
) -> Checkpoint:
    """Load a checkpoint folder; one-line ComposerError for anything missing, mismatched or
    damaged, found before the model's memory is allocated."""
    path = Path(path)
    if not path.exists():
        raise ComposerError(path, "no such checkpoint folder (train one with 'composer train')")
    try:
        meta = json.loads((path / SPEC_FILE).read_text())
        spec = ModelSpec(**meta["spec"])
    except FileNotFoundError:
        raise ComposerError(path, f"not a composer checkpoint (no {SPEC_FILE})") from None
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}"
        raise ComposerError(path / SPEC_FILE, f"not readable JSON ({where}): damaged") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else "fields the spec does not have"
        raise ComposerError(path / SPEC_FILE, f"damaged checkpoint spec ({what})") from None
    tok = tokenizer or ScoreTokenizer.named(spec.tokenizer)
    if tok.vocab_hash != spec.tokenizer_hash or len(tok) != spec.vocab_size:
        raise ComposerError(
            path,
            f"tokenizer mismatch: the checkpoint was trained with "
            f"{spec.tokenizer} ({spec.tokenizer_hash}), not this tokenizer "
            f"({tok.spec.name}, {tok.vocab_hash})",
        )
    _check_spec(spec, path / SPEC_FILE)
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        raise ComposerError(weights, "missing: the checkpoint has no weights")
    digest = _sha256(weights)  # ~0.02 s for the shipped 26 MB
    recorded = meta.get("weights_sha256")
    if recorded is None:
        log.warning(
            "%s: no weights digest recorded (saved before digests existed): changed bytes "
            "in %s cannot be detected",
            path / SPEC_FILE,
            WEIGHTS_FILE,
        )
    elif recorded != digest:
        raise ComposerError(
            weights, "does not match the digest recorded when it was saved: damaged or replaced"
        )
    with torch.device("meta"):  # shapes only: allocates nothing, whatever the spec asks
        skeleton = transformers.AutoModelForCausalLM.from_config(spec.hf_config())
    _check_weights_header(skeleton, weights, path / SPEC_FILE)
    _check_config_json(path / CONFIG_FILE, spec.hf_config(), type(skeleton).__name__)
    try:
        with quiet_loading():
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, config=spec.hf_config(), dtype=dtype
            )
    except Exception as e:  # safetensors/transformers raise many types for a damaged file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ComposerError(path, f"corrupt or unreadable weights ({msg})") from None
    model.eval()
    return Checkpoint(
        model=model, spec=spec, tokenizer=tok, info=meta.get("info", {}), weights_digest=digest[:16]
    )


_LOADED: dict[str, Checkpoint] = {}
_LOADING = threading.Lock()  # compose loads the model in a second thread while it searches


def cached_checkpoint(model: str | Path = DEFAULT_MODEL, adapter: str | None = None) -> Checkpoint:
    """The checkpoint at ``model``, loaded once per process; with ``adapter``, that adapter
    merged in (merged once per process too, see composer.model.adapters)."""
    from composer.model import adapters

    key = str(Path(model).resolve())
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = load_checkpoint(model)
        if adapter is None:
            return _LOADED[key]
        return adapters.cached_adapter(_LOADED[key], model, adapter)


def forget_checkpoints() -> None:
    """Drop the loaded checkpoints (a benchmark that counts loading starts cold)."""
    from composer.model import adapters

    _LOADED.clear()
    adapters.forget_adapters()
