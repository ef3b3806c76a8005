"""Serving the decoder and its style adapters with vLLM's multi-LoRA, on GPUs.

vLLM is imported only inside :class:`VllmSampler` (it has no CPU build, and nothing else in
composer needs it). Two ways to serve, both from the folders composer writes:

- multi-LoRA: one base in GPU memory, each request names its style's adapter
  (``serve_command`` gives the ``vllm serve`` line; ``VllmSampler`` is the offline engine).
  vLLM applies LoRA to fused MoE experts from 0.11.2 on; a vLLM that drops expert LoRA
  weights decodes like the base, so check a style's output against the merged model first;
- merged: ``export_merged`` writes one plain checkpoint per style (the same merge that local
  decoding uses), which any vLLM serves as an ordinary model.

The checkpoint has no text tokenizer: prompts are token ids (``tok.header(style, key)``) and
outputs are token ids. Composer's grammar-constrained decoding is not applied by vLLM;
decode the returned ids with ``ScoreTokenizer.decode`` and keep the rows that parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.errors import ComposerError
from composer.model.adapters import adapter_path, list_adapters, merge_adapter, read_meta
from composer.model.checkpoint import load_checkpoint, save_checkpoint
from composer.paths import DEFAULT_MODEL

NO_VLLM = "vLLM is not installed (it has no CPU build: pip install vllm on a CUDA machine)"


def serve_command(
    model: str | Path = DEFAULT_MODEL, adapters: list[str] | None = None, port: int = 8000
) -> list[str]:
    """The ``vllm serve`` command line serving ``model`` with ``adapters`` (default: all)."""
    names = list_adapters(model) if adapters is None else adapters
    paths = [adapter_path(model, n) for n in names]
    ranks = [read_meta(p)["config"]["rank"] for p in paths]
    cmd = ["vllm", "serve", str(Path(model).resolve()), "--port", str(port),
           "--skip-tokenizer-init", "--dtype", "bfloat16"]  # fmt: skip
    if names:
        cmd += ["--enable-lora", "--max-lora-rank", str(max(ranks)), "--max-loras", str(len(names))]
        cmd += [
            "--lora-modules",
            *(f"{n}={p.resolve()}" for n, p in zip(names, paths, strict=True)),
        ]
    return cmd


def export_merged(model: str | Path, name: str, out: str | Path) -> Path:
    """Write ``model`` with adapter ``name`` merged as a plain checkpoint folder ``out``."""
    out = Path(out)
    if out.exists():
        raise ComposerError(out, "already exists")
    base = load_checkpoint(model)
    merged = merge_adapter(base, adapter_path(model, name))
    return save_checkpoint(merged.model, merged.spec, out, info=merged.info)


@dataclass
class VllmSampler:
    """vLLM's offline engine over the base, with each style's adapter as a LoRA request."""

    model: Path = DEFAULT_MODEL
    gpu_memory_utilization: float = 0.5

    def __post_init__(self) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise ComposerError(None, NO_VLLM) from None
        names = list_adapters(self.model)
        ranks = [read_meta(adapter_path(self.model, n))["config"]["rank"] for n in names]
        self.tok = load_checkpoint(self.model).tokenizer
        self.names = names
        self.llm = LLM(
            model=str(self.model),
            skip_tokenizer_init=True,
            enable_lora=bool(names),
            max_lora_rank=max(ranks, default=8),
            max_loras=max(len(names), 1),
            gpu_memory_utilization=self.gpu_memory_utilization,
        )

    def sample(
        self,
        style: str,
        key: tuple[int, str],
        n: int = 4,
        max_tokens: int = 1024,
        seed: int = 0,
        adapter: str | None = None,
    ) -> list[list[int]]:
        """``n`` token rows continuing ``style``'s header, with ``adapter`` (default: the
        style's own when there is one)."""
        from vllm import SamplingParams, TokensPrompt
        from vllm.lora.request import LoRARequest

        name = adapter or (style if style in self.names else None)
        lora = (
            LoRARequest(name, self.names.index(name) + 1, str(adapter_path(self.model, name)))
            if name
            else None
        )
        header = self.tok.header(style, key)
        params = SamplingParams(
            n=n, max_tokens=max_tokens, seed=seed, detokenize=False,
            stop_token_ids=[self.tok.eos_id], top_p=0.95,
        )  # fmt: skip
        out = self.llm.generate(TokensPrompt(prompt_token_ids=header), params, lora_request=lora)
        return [header + list(c.token_ids) for c in out[0].outputs]
