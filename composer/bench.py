"""Benchmarks that print figures measured side by side in one run (``composer bench``)."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    fast_tokens: int  # composer's decoding loop: the lean decoder with drafts (Mixtral)
    fast_s: float
    plain_tokens: int  # model.generate, the reference
    plain_s: float

    @property
    def ratio(self) -> float:
        """Tokens/s of composer's loop over model.generate's."""
        return (self.fast_tokens / self.fast_s) / (self.plain_tokens / self.plain_s)

    def report(self) -> str:
        return "\n".join([
            f"model: {self.model}; {self.candidates} candidates x {self.bars} bars; four requests "
            "(chorale 4/4, folk 6/8, fiddle 2/4, quartet 3/4), the same prompts and constraints "
            "for both",
            f"composer's loop (lean forward, drafts verified):  "
            f"{self.fast_tokens / self.fast_s:8.1f} tokens/s ({self.fast_tokens} in "
            f"{self.fast_s:.2f} s)",
            f"plain model.generate (same processors):           "
            f"{self.plain_tokens / self.plain_s:8.1f} tokens/s ({self.plain_tokens} in "
            f"{self.plain_s:.2f} s)",
            f"speed-up over model.generate: {self.ratio:.2f}x",
        ])  # fmt: skip


# Four requests across styles and meters: drafts pay off by how much a piece repeats itself,
# so one request alone would flatter or wrong the lean path.
_BENCH_REQUESTS = (
    ("chorale", (2, "minor"), (4, 4)),
    ("folk", (7, "major"), (6, 8)),
    ("fiddle", (2, "major"), (2, 4)),
    ("quartet", (0, "major"), (3, 4)),
)


def bench_generate(
    model: str | Path, bars: int = 8, candidates: int = 4, seed: int = 0
) -> GenerateBench:
    """Tokens/s of composer's decoding loop and of ``model.generate`` in the same run, summed
    over four requests (styles and meters), each with the same prompt and constraints."""
    import torch

    from composer.model import load_checkpoint
    from composer.model.decode import decoding_threads, processors, sample
    from composer.model.generate import uniform_controls
    from composer.types import GenerationRequest

    ckpt = load_checkpoint(model)
    tok = ckpt.tokenizer
    timed = {"fast": [0, 0.0], "plain": [0, 0.0]}
    for i, (style, key, meter) in enumerate(_BENCH_REQUESTS):
        req = GenerationRequest(
            style=style,
            key=key,
            meter=meter,
            controls=uniform_controls(bars, [1, 2]),
            candidates=candidates,
            seed=seed + i,
        )
        header = len(tok.header(req.style, req.key))
        if i == 0:  # warm up once
            sample(ckpt, dataclasses.replace(req, controls=req.controls[:1]))
        t0 = time.perf_counter()
        rows, _, _ = sample(ckpt, req)
        timed["fast"][0] += sum(len(r) - header for r in rows)
        timed["fast"][1] += time.perf_counter() - t0
        # model.generate writes as many tokens as composer's longest row, in every row.
        new = max(len(r) for r in rows) - header
        ids = torch.tensor([tok.header(req.style, req.key)] * candidates)
        _, chain = processors(tok, req, candidates, header)
        torch.manual_seed(req.seed)
        t0 = time.perf_counter()
        with torch.inference_mode(), decoding_threads():
            out = ckpt.model.generate(
                ids,
                logits_processor=chain,
                do_sample=True,
                top_k=0,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=tok.pad_id,
            )
        timed["plain"][0] += (out.shape[1] - header) * candidates
        timed["plain"][1] += time.perf_counter() - t0
    return GenerateBench(str(model), candidates, bars, *timed["fast"], *timed["plain"])


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

    from composer.model.checkpoint import forget_checkpoints
    from composer.pipeline import compose

    forget_checkpoints()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = compose(path, "", Path(tmp) / "out", model=model, seed=seed)
        wall = time.perf_counter() - t0
    return ComposeBench(str(path), res.record.plan.duration.value, wall, res.record.seconds)


@dataclass(frozen=True)
class EditBench:
    request: str
    duration: float
    bars: str
    edit_s: list[float]  # edit() of the span, the outputs refreshed, per run
    compose_s: list[float]  # compose() of the same request, per run (the model loaded)

    def report(self) -> str:
        def line(xs: list[float]) -> str:
            return f"median {np.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f})"

        return "\n".join([
            f"score: {self.request!r}, {self.duration:g} s; edit: bars {self.bars} of the "
            f"melody, 'more intense', with score.wav, score.musicxml and timeline.png refreshed",
            f"edit {self.bars}:   {line(self.edit_s)} over {len(self.edit_s)} runs",
            f"full re-compose: {line(self.compose_s)} over {len(self.compose_s)} runs",
            f"ratio (re-compose / edit, medians): "
            f"{np.median(self.compose_s) / np.median(self.edit_s):.1f}",
        ])  # fmt: skip


def bench_edit(
    request: str = "a folk song for a walk through the hills",
    duration: float = 30.0,
    bars: str = "5-8",
    runs: int = 3,
) -> EditBench:
    """Time an edit of four bars of a ``duration``-second composed score against composing
    the whole score again, each ``runs`` times, one after the other, with the model loaded."""
    import shutil
    import tempfile

    from composer.edit import edit
    from composer.pipeline import compose

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        compose(None, request, root / "out", duration=duration)  # loads the model once
        edits, composes = [], []
        for k in range(runs):
            shutil.copytree(root / "out", root / f"edit{k}")
            t0 = time.perf_counter()
            edit(root / f"edit{k}", bars=bars, tracks="melody", prompt="more intense", seed=k)
            edits.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            compose(None, request, root / f"again{k}", duration=duration, seed=k)
            composes.append(time.perf_counter() - t0)
    return EditBench(request, duration, bars, edits, composes)


@dataclass(frozen=True)
class SearchBench:
    pieces: int  # synthetic library entries
    queries: int
    latencies_ms: list[float]  # search() end to end, the query's text embedding included
    scoring_ms: list[float]  # the same queries without the text embedding
    build_pieces: int  # real corpus pieces indexed for the build rate
    build_s: float
    load: float  # the machine's 1-minute load average when the benchmark started

    def report(self) -> str:
        lat, sc = np.asarray(self.latencies_ms), np.asarray(self.scoring_ms)
        verdict = "PASS" if np.median(lat) <= SEARCH_TARGET_MS else "FAIL"
        lines = [
            f"library: {self.pieces} synthetic pieces; {self.queries} queries",
            f"query latency (text embedding included): median {np.median(lat):.1f} ms, "
            f"p95 {np.percentile(lat, 95):.1f} ms (target <= {SEARCH_TARGET_MS:.0f} ms: {verdict})",
            f"scoring alone (no embedding): median {np.median(sc):.1f} ms, "
            f"p95 {np.percentile(sc, 95):.1f} ms",
            f"index build rate: {self.build_pieces / self.build_s:.2f} pieces/s "
            f"({self.build_pieces} corpus pieces in {self.build_s:.1f} s, one process)",
            f"load average (1 min) at the start: {self.load:.2f} on {os.cpu_count()} CPUs",
        ]
        return "\n".join(lines)


SEARCH_TARGET_MS = 50.0


def bench_search(pieces: int = 20_000, queries: int = 50, build_files: int = 20, seed: int = 0):
    """Query latency over a synthetic library, and the build
    rate of ``index`` over the first ``build_files`` Bach chorales of music21's corpus."""
    import tempfile

    from composer.music.corpus import corpus_files
    from composer.retrieve.index import index
    from composer.retrieve.library import Library
    from composer.retrieve.search import _embed, _lexical, parse_query, search

    load = os.getloadavg()[0]
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        lib = _synthetic_library(Path(tmp) / "synthetic", pieces, rng)
        lib = Library.open(lib.folder)
        texts = [_synthetic_query(lib, rng) for _ in range(queries)]
        search(lib, texts[0])  # loads the sentence model and builds the word index
        latencies, scoring = [], []
        for text in texts:
            t0 = time.perf_counter()
            search(lib, text)
            latencies.append((time.perf_counter() - t0) * 1000)
        for text in texts:
            vector = _embed(text)
            t0 = time.perf_counter()
            scores = lib.embeddings @ vector + _lexical(lib, text)
            parse_query(text)
            np.argpartition(-scores, 10)[:10]
            scoring.append((time.perf_counter() - t0) * 1000)
        files = [path for _, path in corpus_files(["bach"])[:build_files]]
        report = index(files, Path(tmp) / "built")
    return SearchBench(
        pieces, queries, latencies, scoring, report.pieces_added, report.seconds, load
    )


_SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "tor", "vel", "an", "bri", "dun", "el", "fa")


def _synthetic_library(folder: Path, n: int, rng: np.random.Generator):
    """``n`` entries with random names, attributes, unit embeddings and feature histograms."""
    import dataclasses

    from composer.retrieve.features import FEATURE_DIM
    from composer.retrieve.library import EMBEDDING_DIM, Library, PieceMeta
    from composer.retrieve.text import describe
    from composer.tokens.spec import STYLES

    def word() -> str:
        return "".join(rng.choice(_SYLLABLES, rng.integers(2, 4))).capitalize()

    metas = []
    for i in range(n):
        meter = str(rng.choice(["4/4", "3/4", "6/8", "2/4", "2/2", "4/2"]))
        bars = int(rng.integers(8, 120))
        meta = PieceMeta(
            id=f"synthetic/{i:05d}.mid", source="file", path=f"/synthetic/{i:05d}.mid", tune="",
            title=" ".join(word() for _ in range(rng.integers(1, 5))), work="", composer=word(),
            collection="synthetic", place="", style=str(rng.choice(STYLES)),
            tonic=int(rng.integers(12)), mode=str(rng.choice(["major", "minor"])), meter=meter,
            tempo=float(rng.integers(50, 180)), tempo_marked=bool(rng.random() < 0.5),
            parts=int(rng.integers(1, 6)), programs=(), bars=bars, seconds=bars * 2.0,
            density=float(rng.uniform(2, 30)), description="",
        )  # fmt: skip
        metas.append(dataclasses.replace(meta, description=describe(meta)))
    emb = rng.standard_normal((n, EMBEDDING_DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    feats = rng.random((n, FEATURE_DIM)).astype(np.float32)
    lib = Library(folder)
    lib.extend(metas, emb, feats)
    lib.save()
    return lib


def _synthetic_query(lib, rng: np.random.Generator) -> str:
    from composer.retrieve.text import key_words

    p = lib.pieces[int(rng.integers(len(lib)))]
    return f"{p.title}, a {p.style} piece in {key_words(p.tonic, p.mode)}, {p.meter}, {p.bars} bars"
