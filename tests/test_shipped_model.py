"""The checkpoint that ships in models/composer-moe: its size, its card, and that it writes
valid music in the key asked for."""

from __future__ import annotations

from composer.model import load_checkpoint
from composer.model.adherence import best_key
from composer.model.decode import decode
from composer.model.generate import uniform_controls
from composer.paths import DEFAULT_MODEL
from composer.types import GenerationRequest


def test_shipped_checkpoint_is_small_and_documented():
    weights = DEFAULT_MODEL / "model.safetensors"
    assert weights.stat().st_size <= 30_000_000
    card = (DEFAULT_MODEL / "README.md").read_text()
    for needed in ("## Data", "## Training", "validation loss", "## Reproduce", "n-gram"):
        assert needed in card
    ckpt = load_checkpoint(DEFAULT_MODEL)
    assert ckpt.spec.arch == "mixtral" and ckpt.info["history"][-1]["val_loss"] < 1.0


def test_shipped_model_writes_valid_music_in_the_key():
    ckpt = load_checkpoint(DEFAULT_MODEL)
    req = GenerationRequest(
        style="chorale", key=(2, "minor"), meter=(4, 4), controls=uniform_controls(4, [1, 2]),
        candidates=2, seed=3,
    )  # fmt: skip
    a, b = decode(ckpt, req), decode(ckpt, req)
    assert a.best.ids == b.best.ids
    tok = ckpt.tokenizer
    bars = tok.bars(a.best.ids)
    assert len(bars) == 4 and all(bar["meter"] == (4, 4) for bar in bars)
    assert sum(len(bar["onsets"]) for bar in bars) >= 8
    assert best_key(tok, a.best.ids) == (2, "minor")
