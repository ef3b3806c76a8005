"""Benchmarks that print figures measured side by side in one run (``composer bench``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from composer.config import AnalysisConfig
from composer.video import analyze, probe_video


@dataclass(frozen=True)
class AnalyzeBench:
    path: str
    width: int
    height: int
    duration: float
    full_s: float  # composer's whole analysis (best of the repeats)
    content_only_s: float  # PySceneDetect's ContentDetector alone on the same file

    @property
    def ratio(self) -> float:
        return self.full_s / self.content_only_s

    def report(self) -> str:
        return "\n".join(
            [
                f"file: {self.path} ({self.width}x{self.height}, {self.duration:.2f} s)",
                f"full analysis (cuts, fades, motion, beats, colour, keyframes): "
                f"{self.full_s:.3f} s  ({self.duration / self.full_s:.1f}x real time)",
                f"PySceneDetect ContentDetector alone (scenedetect.detect):      "
                f"{self.content_only_s:.3f} s",
                f"ratio full / ContentDetector: {self.ratio:.2f}",
            ]
        )


def bench_analyze(
    path: str | Path, repeat: int = 3, config: AnalysisConfig | None = None
) -> AnalyzeBench:
    """Time ``analyze`` and ContentDetector alone on the same file, interleaved, best of each."""
    import logging

    from scenedetect import ContentDetector, detect

    logging.getLogger("pyscenedetect").setLevel(logging.WARNING)  # its per-run INFO lines
    info = probe_video(path)
    full, content = [], []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        detect(str(path), ContentDetector())
        content.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = analyze(path, config)
        full.append(time.perf_counter() - t0)
    return AnalyzeBench(
        str(path), info.width, info.height, result.duration, min(full), min(content)
    )


@dataclass(frozen=True)
class GenerateBench:
    model: str
    candidates: int
    bars: int
    loop_tokens: int  # composer's decoding loop over transformers' forward
    loop_s: float
    fast_tokens: int  # the same loop over FastDecoder (the default for Mixtral-style models)
    fast_s: float
    plain_tokens: int  # model.generate
    plain_s: float

    @property
    def ratio(self) -> float:
        """Tokens/s of the default (lean) path over model.generate's."""
        return (self.fast_tokens / self.fast_s) / (self.plain_tokens / self.plain_s)

    @property
    def loop_ratio(self) -> float:
        return (self.loop_tokens / self.loop_s) / (self.plain_tokens / self.plain_s)

    def report(self) -> str:
        return "\n".join([
            f"model: {self.model}; {self.candidates} candidates x {self.bars} bars, same prompt "
            "and constraints",
            f"composer loop, transformers forward + KV cache:           "
            f"{self.loop_tokens / self.loop_s:8.1f} tokens/s ({self.loop_tokens} in "
            f"{self.loop_s:.2f} s)",
            f"composer loop, lean forward + static cache (default):     "
            f"{self.fast_tokens / self.fast_s:8.1f} tokens/s ({self.fast_tokens} in "
            f"{self.fast_s:.2f} s)",
            f"plain model.generate (same processors):                   "
            f"{self.plain_tokens / self.plain_s:8.1f} tokens/s ({self.plain_tokens} in "
            f"{self.plain_s:.2f} s)",
            f"speed-up over model.generate: lean (default) {self.ratio:.2f}x, "
            f"transformers forward {self.loop_ratio:.2f}x",
        ])  # fmt: skip


def bench_generate(
    model: str | Path, bars: int = 8, candidates: int = 4, seed: int = 0
) -> GenerateBench:
    """Tokens/s of composer's decoding loop and of ``model.generate`` in the same run."""
    import torch

    from composer.model import load_checkpoint
    from composer.model.generate import (
        GenerationRequest,
        decoding_threads,
        processors,
        sample,
        uniform_controls,
    )

    ckpt = load_checkpoint(model)
    req = GenerationRequest(
        style="chorale",
        key=(2, "minor"),
        meter=(4, 4),
        controls=uniform_controls(bars, [1, 2]),
        candidates=candidates,
        seed=seed,
    )
    warm = GenerationRequest(**{**req.__dict__, "controls": req.controls[:1]})
    header = len(ckpt.tokenizer.header(req.style, req.key))
    timed = {}
    for fast in (False, True):
        sample(ckpt, warm, fast=fast)
        t0 = time.perf_counter()
        rows, _, _ = sample(ckpt, req, fast=fast)
        timed[fast] = (sum(len(r) - header for r in rows), time.perf_counter() - t0)
    new = max(len(r) for r in rows) - header
    ids = torch.tensor([ckpt.tokenizer.header(req.style, req.key)] * candidates)
    _, chain = processors(ckpt.tokenizer, req, candidates, header)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.inference_mode(), decoding_threads():
        out = ckpt.model.generate(
            ids,
            logits_processor=chain,
            do_sample=True,
            top_k=0,
            max_new_tokens=new,
            min_new_tokens=new,
            pad_token_id=ckpt.tokenizer.pad_id,
        )
    plain_s = time.perf_counter() - t0
    plain_tokens = (out.shape[1] - header) * candidates
    return GenerateBench(
        str(model), candidates, bars, *timed[False], *timed[True], plain_tokens, plain_s
    )


@dataclass(frozen=True)
class ComposeBench:
    path: str
    duration: float
    wall_s: float  # compose() end to end, model loading included
    stages: dict  # seconds per stage, as plan.json records them

    @property
    def real_time_factor(self) -> float:
        return self.duration / self.wall_s

    def report(self) -> str:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in self.stages.items())
        return "\n".join(
            [
                f"file: {self.path} ({self.duration:.2f} s)",
                f"compose end to end (model loading included): {self.wall_s:.2f} s",
                f"stages (s): {parts}",
                f"real-time factor (duration / wall time): {self.real_time_factor:.2f}",
            ]
        )


def bench_compose(path: str | Path, model: str | Path | None = None, seed: int = 0) -> ComposeBench:
    """Time ``compose`` on ``path`` into a scratch folder, from a cold start of the model."""
    import tempfile

    from composer.model.generate import forget_checkpoints
    from composer.pipeline import compose

    forget_checkpoints()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = compose(path, "", Path(tmp) / "out", model=model, seed=seed)
        wall = time.perf_counter() - t0
    return ComposeBench(str(path), res.record.plan.duration.value, wall, res.record.seconds)
