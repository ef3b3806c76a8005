"""Shared fixtures: paths to ../shared/media and synthetic clips made with ffmpeg."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = Path(os.environ.get("COMPOSER_SHARED_MEDIA", ROOT.parent / "shared" / "media"))
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def shared(*parts: str) -> Path:
    """A file under ../shared/media, or skip the test with the reason."""
    path = SHARED_MEDIA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test media not found: {path} (run beside ../shared)")
    return path


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly; fail the test with its message if it fails."""
    proc = subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


# A decoder small enough to build and train in seconds: tests check behaviour, not music.
TINY_MODEL = dict(arch="mixtral", hidden=32, layers=2, heads=2, kv_heads=1, experts=4,
                  experts_per_token=2, expert_hidden=32, context=256)  # fmt: skip


def tiny_decoder(arch: str = "mixtral", seed: int = 0):
    """A tiny random decoder in memory: Mixtral decodes with composer's lean decoder, the other
    architectures (qwen2_moe) through transformers' forward."""
    from composer.model import Checkpoint, ModelSpec, build_model
    from composer.tokens import ScoreTokenizer

    tok = ScoreTokenizer()
    spec = ModelSpec(**{**TINY_MODEL, "arch": arch}, vocab_size=len(tok),
                     tokenizer_hash=tok.vocab_hash)  # fmt: skip
    return Checkpoint(model=build_model(spec, seed=seed).eval(), spec=spec, tokenizer=tok)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random decoder saved as a checkpoint folder, for end-to-end command tests."""
    from composer.model import ModelSpec, build_model, save_checkpoint
    from composer.tokens import ScoreTokenizer

    tok = ScoreTokenizer.named("remi-roles-v1")
    spec = ModelSpec(**TINY_MODEL, vocab_size=len(tok), tokenizer=tok.spec.name,
                     tokenizer_hash=tok.vocab_hash)  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(build_model(spec, seed=1), spec, path)
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fuzz", "the bounded fuzz of tests/test_fuzz.py")
    group.addoption("--fuzz-midi", type=int, default=300, help="MIDI mutants (default 300)")
    group.addoption("--fuzz-video", type=int, default=50, help="video mutants (default 50)")
    group.addoption("--fuzz-report", metavar="FILE", help="append the fuzz counts to FILE")
