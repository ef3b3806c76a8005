"""The decoder: a small transformers mixture-of-experts causal LM, saved with its spec.

A checkpoint is a folder: ``config.json`` + ``model.safetensors`` (transformers'
``save_pretrained``, so peft, accelerate and vLLM read it unchanged) and ``composer.json`` (the
ModelSpec, the tokenizer's name and vocabulary hash, and how it was trained).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers

from composer.errors import ComposerError
from composer.io import atomic_write_text, make_readable
from composer.tokens import ScoreTokenizer

SPEC_FILE = "composer.json"
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = MODELS_DIR / "composer-moe"


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
        raise ValueError(f"unknown arch {self.arch!r}; valid: qwen2_moe, mixtral, olmoe")


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
    """Save weights (in ``dtype``), the HF config and composer.json into folder ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(dtype) for k, v in model.state_dict().items()}
    model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
    for f in tmp.iterdir():
        make_readable(f)
    atomic_write_text(
        tmp / SPEC_FILE,
        json.dumps({"spec": dataclasses.asdict(spec), "info": info or {}}, indent=2) + "\n",
    )
    if path.exists():
        for f in path.iterdir():
            f.unlink()
        path.rmdir()
    tmp.rename(path)
    return path


def load_checkpoint(
    path: str | Path = DEFAULT_MODEL,
    dtype: torch.dtype = torch.float32,
    tokenizer: ScoreTokenizer | None = None,
) -> Checkpoint:
    """Load a checkpoint folder; one-line ComposerError for anything missing or mismatched."""
    path = Path(path)
    if not path.exists():
        raise ComposerError(path, "no such checkpoint folder (train one with 'composer train')")
    try:
        meta = json.loads((path / SPEC_FILE).read_text())
        spec = ModelSpec(**meta["spec"])
    except FileNotFoundError:
        raise ComposerError(path, f"not a composer checkpoint (no {SPEC_FILE})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ComposerError(path / SPEC_FILE, f"corrupt checkpoint spec ({e})") from None
    tok = tokenizer or ScoreTokenizer.named(spec.tokenizer)
    if tok.vocab_hash != spec.tokenizer_hash or len(tok) != spec.vocab_size:
        raise ComposerError(
            path,
            f"tokenizer mismatch: the checkpoint was trained with "
            f"{spec.tokenizer} ({spec.tokenizer_hash}), not this tokenizer "
            f"({tok.spec.name}, {tok.vocab_hash})",
        )
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as e:  # safetensors/transformers raise many types for a damaged file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ComposerError(path, f"corrupt or unreadable weights ({msg})") from None
    model.eval()
    weights = path / "model.safetensors"  # absent only where transformers sharded them
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.exists() else ""
    return Checkpoint(
        model=model, spec=spec, tokenizer=tok, info=meta.get("info", {}), weights_digest=digest
    )
