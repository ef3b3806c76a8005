"""compose(): the pipeline's stages in order, from a video and/or a text request to OUTDIR.

analyse (video) -> describe (Brief) -> plan (Plan) -> generate (decoder) -> arrange -> render
-> mux. Everything is written into a temporary folder beside OUTDIR and renamed into place at
the end, so OUTDIR is either complete or untouched.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from composer.errors import ComposerError
from composer.plan.request import PromptFacts
from composer.progress import ProgressFn, log, no_progress
from composer.types import Brief, Plan, VideoAnalysis, _Json

VERSION = 1


@dataclass
class ComposeRecord(_Json):
    """plan.json: everything needed to see why the music is what it is, and to re-run it."""

    prompt: str
    request: PromptFacts  # what was read from the prompt, with notes on each value
    video: str | None
    brief: Brief | None
    plan: Plan
    seed: int
    describer: str
    model: str
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
    progress: ProgressFn = no_progress,
) -> ComposeResult:
    """Score ``video`` (or, without one, a ``duration``-second piece) following ``prompt``."""
    from composer.describe import describe
    from composer.model.checkpoint import DEFAULT_MODEL
    from composer.model.generate import cached_checkpoint
    from composer.plan.planner import make_plan
    from composer.plan.request import parse_prompt

    out = Path(outdir)
    if out.exists() and not force:
        raise ComposerError(out, "already exists (pass --force to replace it)")
    if video is None and not prompt.strip() and duration is None:
        raise ComposerError(None, "give a video, or a prompt (with --duration) to compose")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    analysis: VideoAnalysis | None = None
    brief: Brief | None = None
    if video is not None:
        from composer.video import analyze

        analysis = analyze(video, progress=progress)
        lap("analyze")
        brief = describe(analysis, describer)
        lap("describe")
    facts = parse_prompt(prompt)
    if duration is not None and video is None:
        facts.duration = duration
    plan = make_plan(brief, facts, analysis, seed=seed)
    lap("plan")
    ckpt = cached_checkpoint(model or DEFAULT_MODEL)
    lap("load model")

    tmp = out.with_name(f".{out.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        files = _write(tmp, ckpt, plan, analysis, video, soundfont, progress, lap)
        import composer

        record = ComposeRecord(
            prompt=prompt, request=facts, video=str(video) if video else None, brief=brief,
            plan=plan,
            seed=seed, describer=brief.describer if brief else "none",
            model=str(model or DEFAULT_MODEL), seconds=seconds,
            versions={"composer": composer.__version__, "plan.json": str(VERSION),
                      "tokenizer": ckpt.spec.tokenizer},
        )  # fmt: skip
        record.save(tmp / "plan.json")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {k: out / v.name for k, v in files.items()} | {"plan": out / "plan.json"}
    log.info("composed into %s in %.1f s", out, sum(seconds.values()))
    return ComposeResult(out, files, record)


def _write(tmp, ckpt, plan, analysis, video, soundfont, progress, lap) -> dict[str, Path]:
    from concurrent.futures import ThreadPoolExecutor

    from composer.arrange.arranger import arrange
    from composer.model.generate import GenerationRequest, generate
    from composer.plan.figure import plot_plan
    from composer.render import mux, render_midi
    from composer.render.muxer import picture_for
    from composer.tokens import BarControls

    files: dict[str, Path] = {}
    # Two lanes on two cores: ffmpeg and fluidsynth run in the worker thread (they leave the
    # GIL), while this thread decodes and writes the notation and the timeline.
    with ThreadPoolExecutor(1) as lane:
        picture = None
        if video is not None:
            # A picture that video.mp4 cannot hold (VP8) is re-encoded during generation.
            picture = lane.submit(picture_for, video, ".mp4", tmp / ".picture.mp4")
        req = GenerationRequest(
            style=plan.style.value,
            key=tuple(plan.key.value),
            meter=tuple(plan.meter.value),
            controls=tuple(BarControls(b.intensity, b.hit, b.section) for b in plan.bars),
            roles=roles_for(len(plan.instruments.value)),
            every_role_every_bar=True,
            seed=plan.seed,
        )
        result = generate(ckpt, req, progress)
        lap("generate")
        score = arrange(ckpt.tokenizer.decode(result.best.ids), plan, ckpt.tokenizer.spec.roles)
        files["score"] = tmp / "score.mid"
        score.dump_midi(str(files["score"]))
        files["audio"] = tmp / "score.wav"
        if video is not None:
            files["video"] = tmp / "video.mp4"

        def sound() -> None:
            render_midi(files["score"], files["audio"], soundfont=soundfont)
            if video is not None:
                mux(picture.result(), files["audio"], files["video"])
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
    from music21 import converter

    pitched = score.copy()
    pitched.tracks = [t for t in pitched.tracks if not t.is_drum]
    midi = path.with_suffix(".pitched.mid")
    pitched.dump_midi(str(midi))
    try:
        converter.parse(midi).write("musicxml", fp=str(path))
    finally:
        midi.unlink(missing_ok=True)
    return path
