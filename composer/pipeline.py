"""compose(): the pipeline's stages in order, from a video and/or a text request to OUTDIR.

analyse (video) -> describe (Brief) -> plan (Plan) -> retrieve (References) -> generate
(decoder) -> arrange -> render -> mux. Everything is written into a temporary folder beside
OUTDIR and renamed into place at the end, so OUTDIR is either complete or untouched
(:mod:`composer.outputs`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from composer.config import duration_problem
from composer.errors import ComposerError
from composer.outputs import Outputs
from composer.plan.request import PromptFacts
from composer.progress import ProgressFn, log, no_progress
from composer.types import Brief, Plan, References, VideoAnalysis, _Json

VERSION = 1


@dataclass
class ComposeRecord(_Json):
    """plan.json: everything needed to see why the music is what it is, and to re-run it."""

    prompt: str
    request: PromptFacts  # what was read from the prompt, with notes on each value
    video: str | None
    brief: Brief | None
    plan: Plan
    references: References | None
    seed: int
    describer: str
    model: str
    adapter: str | None  # the style's LoRA adapter merged into the model, if it has one
    # The adapter's guidance away from its neighbouring style (1: none), and that style.
    guidance: float = 1.0
    guided_against: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage


@dataclass
class ComposeResult:
    outdir: Path
    files: dict[str, Path]
    record: ComposeRecord


def compose(
    video: str | Path | None = None,
    prompt: str = "",
    outdir: str | Path = "out",
    *,
    duration: float | None = None,
    describer: str = "signal",
    model: str | Path | None = None,
    seed: int = 0,
    force: bool = False,
    soundfont: str | Path | None = None,
    library: str | Path | None = None,
    adapter: str | None = "auto",
    style_guidance: float | None = None,
    progress: ProgressFn = no_progress,
) -> ComposeResult:
    """Score ``video`` (or, without one, a ``duration``-second piece) following ``prompt``.

    ``library``: the reference library searched for the plan (default: the music21 one that
    ships with composer); the best pick in the plan's meter primes the decoder. ``adapter``:
    a LoRA adapter of the model to merge in, ``"auto"`` (the default) for the one named after
    the plan's style when the model has one, or None for the base alone; a style adapter
    decodes with its guidance away from its neighbouring style, at ``style_guidance`` in place
    of its own scale when given.
    """
    from composer.describe import describe
    from composer.model.adapters import style_adapter, style_contrast
    from composer.model.checkpoint import DEFAULT_MODEL
    from composer.model.generate import cached_checkpoint
    from composer.plan.planner import make_plan
    from composer.plan.request import parse_prompt
    from composer.retrieve.library import DEFAULT_LIBRARY
    from composer.retrieve.references import find_references, prime_from

    out = Path(outdir)
    if video is None and not prompt.strip() and duration is None:
        raise ComposerError(None, "give a video, or a prompt (with --duration) to compose")
    if duration is not None and (why := duration_problem(duration)):
        raise ComposerError(None, f"cannot compose for {duration:g} s: {why}")
    analysis: VideoAnalysis | None = None
    brief: Brief | None = None
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    # Leaving the block puts OUTDIR in place, or on any error removes the temporary folder.
    with Outputs(force=force) as outputs:
        # OUTDIR is checked and the temporary folder made before any work: a folder composer may
        # not replace, or cannot write, is refused now, not after the music is written.
        tmp = outputs.folder(out)
        # Set when the work is abandoned: the render and ffmpeg in the second lane stop part-way.
        cancel = threading.Event()
        # The second core's lane: ffmpeg and fluidsynth leave the GIL. A picture that video.mp4
        # cannot hold (VP8) is re-encoded there from the start, while this thread analyses,
        # plans and decodes.
        lane = ThreadPoolExecutor(1)
        # A third worker opens the reference library while the video is analysed, then searches
        # it while the decoder loads.
        aside = ThreadPoolExecutor(1)
        opened = aside.submit(_open_library, library or DEFAULT_LIBRARY)
        try:
            facts = parse_prompt(prompt)  # before the video: a request it refuses costs nothing
            if duration is not None and video is None:
                facts.duration = duration
            picture = None
            if video is not None:
                from composer.video import probe_video

                declared = probe_video(video).duration
                if declared is not None and (why := duration_problem(declared)):
                    raise ComposerError(video, f"cannot be scored: {why}")
                from composer.render.muxer import picture_for
                from composer.video import analyze

                picture = lane.submit(picture_for, video, ".mp4", tmp / ".picture.mp4", cancel)
                analysis = analyze(video, progress=progress)
                lap("analyze")
                brief = describe(analysis, describer)
                lap("describe")
            plan = make_plan(brief, facts, analysis, seed=seed)
            lap("plan")
            # With "auto", the plan's style chooses its LoRA adapter when the checkpoint has one
            # (merged, cached); the library search runs meanwhile.
            if adapter == "auto":
                adapter = style_adapter(model or DEFAULT_MODEL, plan.style.value)
            found = aside.submit(lambda: find_references(plan, prompt, opened.result()))
            ckpt = cached_checkpoint(model or DEFAULT_MODEL, adapter)
            lap("load model")
            contrast = style_contrast(model or DEFAULT_MODEL, adapter, style_guidance)
            req = dataclasses.replace(request_for(plan), contrast=contrast)
            refs, req = prime_from(found.result(), req, ckpt.tokenizer)
            lap("retrieve")
            files = _write(tmp, ckpt, plan, req, analysis, video, soundfont, progress, lap, lane,
                           picture, cancel)  # fmt: skip
            import composer

            record = ComposeRecord(
                prompt=prompt, request=facts, video=str(video) if video else None, brief=brief,
                plan=plan, references=refs,
                seed=seed, describer=brief.describer if brief else "none",
                model=str(model or DEFAULT_MODEL), adapter=adapter, seconds=seconds,
                guidance=contrast.scale if contrast else 1.0,
                guided_against=contrast.against if contrast else None,
                versions={"composer": composer.__version__, "plan.json": str(VERSION),
                          "tokenizer": ckpt.spec.tokenizer},
            )  # fmt: skip
            record.save(tmp / "plan.json")
            lane.shutdown()
            aside.shutdown()
        except BaseException:
            cancel.set()  # the lane's render or ffmpeg stops before its folder goes
            aside.shutdown(cancel_futures=True)
            lane.shutdown(cancel_futures=True)
            raise
    files = {k: out / v.name for k, v in files.items()} | {"plan": out / "plan.json"}
    log.info("composed into %s in %.1f s", out, sum(seconds.values()))
    return ComposeResult(out, files, record)


def _open_library(folder):
    """The library at ``folder``, or ``folder`` itself when it does not open (the search then
    says why, and the music is written without references)."""
    from composer.retrieve.library import Library

    try:
        return Library.open(folder)
    except (ComposerError, OSError, ValueError):
        return folder


def request_for(plan: Plan):
    """The decoder's request for ``plan``: its style, key, meter and per-bar controls."""
    from composer.model.generate import GenerationRequest
    from composer.tokens import BarControls

    return GenerationRequest(
        style=plan.style.value,
        key=tuple(plan.key.value),
        meter=tuple(plan.meter.value),
        controls=tuple(BarControls(b.intensity, b.hit, b.section) for b in plan.bars),
        roles=roles_for(len(plan.instruments.value)),
        every_role_every_bar=True,
        seed=plan.seed,
    )


def _write(
    tmp, ckpt, plan, req, analysis, video, soundfont, progress, lap, lane, picture, cancel
) -> dict[str, Path]:
    """Generate, arrange and write the files into ``tmp``; sound goes to ``lane``."""
    from composer.arrange.arranger import arrange
    from composer.model.generate import generate
    from composer.plan.figure import plot_plan
    from composer.render import mux, render_midi

    files: dict[str, Path] = {}
    result = generate(ckpt, req, progress)
    lap("generate")
    score = arrange(ckpt.tokenizer.decode(result.best.ids), plan, ckpt.tokenizer.spec.roles)
    files["score"] = tmp / "score.mid"
    score.dump_midi(str(files["score"]))
    files["audio"] = tmp / "score.wav"
    if video is not None:
        files["video"] = tmp / "video.mp4"

    def sound() -> None:
        render_midi(files["score"], files["audio"], soundfont=soundfont, cancel=cancel)
        if video is not None:
            mux(picture.result(), files["audio"], files["video"], cancel=cancel)
            (tmp / ".picture.mp4").unlink(missing_ok=True)

    audio = lane.submit(sound)
    files["musicxml"] = _musicxml(score, tmp / "score.musicxml")
    files["timeline"] = tmp / "timeline.png"
    plot_plan(plan, analysis, score, files["timeline"])
    lap("arrange, notation, timeline")
    audio.result()
    lap("render and mux")
    return files


def roles_for(instruments: int) -> tuple[int, ...]:
    """Decoder roles for ``instruments`` parts: melody, inner voices, and a bass from two."""
    if instruments <= 1:
        return (0,)
    inner = tuple(range(1, min(instruments - 2, 4) + 1))
    return (0, *inner, 5)


def _musicxml(score, path: Path) -> Path:
    """MusicXML of the pitched parts for notation programs, through music21 (its exporter
    cannot write General MIDI percussion, which stays in score.mid)."""
    from composer.music.m21 import music21_converter

    pitched = score.copy()
    pitched.tracks = [t for t in pitched.tracks if not t.is_drum]
    midi = path.with_suffix(".pitched.mid")
    pitched.dump_midi(str(midi))
    try:
        music21_converter().parse(midi).write("musicxml", fp=str(path))
    finally:
        midi.unlink(missing_ok=True)
    return path
