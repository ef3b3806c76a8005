"""The vLLM serving path: what runs without vLLM here, and the engine where vLLM exists."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest
import torch

from composer.errors import ComposerError
from composer.model import adapters as ad
from composer.model import load_checkpoint
from composer.model.vllm_serve import VllmSampler, export_merged, serve_command
from composer.train.adapter import save_adapter, wrap_for_training

HAS_VLLM = importlib.util.find_spec("vllm") is not None
NO_VLLM_REASON = "vLLM has no CPU build; this test runs on a CUDA machine with vllm installed"


@pytest.fixture(scope="module")
def adapted(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint with a 'folk' adapter whose LoRA B weights are non-zero."""
    model = tmp_path_factory.mktemp("vllm") / "tiny"
    shutil.copytree(tiny_checkpoint, model)
    base = load_checkpoint(model)
    peft_model = wrap_for_training(base, ad.AdapterConfig(rank=4), seed=0)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    save_adapter(peft_model, ad.adapter_path(model, "folk"), ad.AdapterConfig(rank=4), base, {})
    return model


def test_module_imports_without_vllm():
    code = "import sys, composer.model.vllm_serve; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the import is lazy


def test_serve_command_names_every_adapter(adapted):
    cmd = serve_command(adapted)
    assert cmd[:3] == ["vllm", "serve", str(adapted.resolve())]
    assert "--enable-lora" in cmd and cmd[cmd.index("--max-lora-rank") + 1] == "4"
    assert f"folk={(adapted / 'adapters' / 'folk').resolve()}" in cmd
    assert "--enable-lora" not in serve_command(adapted, adapters=[])


def test_export_merged_is_the_merge(adapted, tmp_path):
    out = export_merged(adapted, "folk", tmp_path / "folk-merged")
    exported = load_checkpoint(out)
    merged = ad.merge_adapter(load_checkpoint(adapted), ad.adapter_path(adapted, "folk"))
    ids = torch.tensor([exported.tokenizer.header("folk", (0, "major"))])
    with torch.no_grad():
        # Saved as bf16, as every checkpoint: equal to bf16 rounding.
        torch.testing.assert_close(
            exported.model(input_ids=ids).logits,
            merged.model(input_ids=ids).logits,
            atol=0.05,
            rtol=0.02,
        )
    with pytest.raises(ComposerError, match="already exists"):
        export_merged(adapted, "folk", out)


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed: the missing-vLLM message is not shown")
def test_sampler_without_vllm_is_one_clear_line(adapted):
    with pytest.raises(ComposerError, match="vLLM is not installed"):
        VllmSampler(adapted)


@pytest.mark.skipif(not HAS_VLLM or not torch.cuda.is_available(), reason=NO_VLLM_REASON)
def test_vllm_multi_lora_decodes(adapted):
    sampler = VllmSampler(adapted)
    rows = sampler.sample("folk", (0, "major"), n=2, max_tokens=64, seed=0)
    assert len(rows) == 2 and all(r[:3] == sampler.tok.header("folk", (0, "major")) for r in rows)
