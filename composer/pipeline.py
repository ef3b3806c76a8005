"""compose(): the pipeline's stages in order, from a video and/or a text request to OUTDIR.

analyse (VideoAnalysis) -> describe (Brief) -> plan (Plan) -> retrieve (References) ->
generate (GenerationResult) -> arrange (the score) -> perform (its dynamics) -> render and mux
(the files). Everything is
written into a temporary folder beside OUTDIR and renamed into place at the end, so OUTDIR is
either complete or untouched (:mod:`composer.outputs`).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from composer import __version__
from composer.config import duration_problem
from composer.errors import ComposerError
from composer.outputs import Outputs
from composer.paths import DEFAULT_LIBRARY, DEFAULT_MODEL
from composer.plan.request import PromptFacts
from composer.progress import ProgressFn, log, no_progress
from composer.types import (
    Brief,
    Plan,
    References,
    VideoAnalysis,
    _Json,
)

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
    from composer.arrange.arranger import arrange
    from composer.describe import describe
    from composer.model.generate import generate
    from composer.perform import perform
    from composer.plan.planner import make_plan
    from composer.plan.request import parse_prompt
    from composer.retrieve.references import find_references
    from composer.video import analyze, probe_video

    out, model = Path(outdir), Path(model or DEFAULT_MODEL)
    if video is None and not prompt.strip() and duration is None:
        raise ComposerError(None, "give a video, or a prompt (with --duration) to compose")
    if duration is not None and (why := duration_problem(duration)):
        raise ComposerError(None, f"cannot compose for {duration:g} s: {why}")
    clock = _Clock()
    analysis: VideoAnalysis | None = None
    brief: Brief | None = None
    # Leaving the block puts OUTDIR in place, or on any error removes the temporary folder.
    # OUTDIR is checked and the temporary folder made before any work: a folder composer may
    # not replace, or cannot write, is refused now, not after the music is written.
    with Outputs(force=force) as outputs, _Lanes(library or DEFAULT_LIBRARY) as lanes:
        tmp = outputs.folder(out)
        facts = parse_prompt(prompt)  # before the video: a request it refuses costs nothing
        if video is not None:
            declared = probe_video(video).duration
            if declared is not None and (why := duration_problem(declared)):
                raise ComposerError(video, f"cannot be scored: {why}")
            lanes.start_picture(video, tmp / ".picture.mp4")
            analysis = clock.lap("analyze", analyze(video, progress=progress))
            brief = clock.lap("describe", describe(analysis, describer))
        elif duration is not None:
            facts.duration = duration
        plan = clock.lap("plan", make_plan(brief, facts, analysis, seed=seed))
        lanes.load_model(model, plan.style.value if adapter == "auto" else adapter)
        refs = clock.lap("retrieve", find_references(plan, prompt, lanes.library()))
        result = generate(
            plan, references=refs, model=model, adapter=adapter,
            style_guidance=style_guidance, progress=progress,
        )  # fmt: skip
        clock.lap("generate")
        refs.priming = result.priming
        score = clock.lap("arrange", arrange(result, plan))
        score = clock.lap("perform", perform(score, plan))
        files = _write(tmp, score, plan, analysis, video, soundfont, lanes, clock)
        contrast = result.request.contrast
        record = ComposeRecord(
            prompt=prompt, request=facts, video=str(video) if video else None, brief=brief,
            plan=plan, references=refs,
            seed=seed, describer=brief.describer if brief else "none",
            model=str(model), adapter=result.adapter, seconds=clock.seconds,
            guidance=contrast.scale if contrast else 1.0,
            guided_against=contrast.against if contrast else None,
            versions={"composer": __version__, "plan.json": str(VERSION),
                      "tokenizer": result.tokenizer.spec.name},
        )  # fmt: skip
        record.save(tmp / "plan.json")
    files = {k: out / v.name for k, v in files.items()} | {"plan": out / "plan.json"}
    log.info("composed into %s in %.1f s", out, sum(clock.seconds.values()))
    return ComposeResult(out, files, record)


class _Clock:
    """Wall time per stage, for plan.json."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str, value=None):
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 3)
        self._last = now
        return value


class _Lanes:
    """The work compose runs beside its stages, on the second core.

    - the picture: a video that video.mp4 cannot hold as it is (VP8) is re-encoded from the
      start, while the video is analysed and the music written (ffmpeg leaves the GIL);
    - the library is opened while the video is analysed, and the decoder loaded (with its
      adapter) while the library is searched;
    - the audio is rendered and muxed while the notation and the timeline are drawn.

    Leaving on an error stops what runs there (the render and ffmpeg part-way) before the
    temporary folder goes.
    """

    def __init__(self, library: str | Path):
        self.cancel = threading.Event()
        self.sound = ThreadPoolExecutor(1)  # ffmpeg and fluidsynth
        self.aside = ThreadPoolExecutor(1)  # the library and the model
        self._library = self.aside.submit(_open_library, library)
        self.picture = None

    def __enter__(self) -> _Lanes:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.cancel.set()
        self.aside.shutdown(cancel_futures=kind is not None)
        self.sound.shutdown(cancel_futures=kind is not None)

    def start_picture(self, video: str | Path, scratch: Path) -> None:
        from composer.render.muxer import picture_for

        self.picture = self.sound.submit(picture_for, video, ".mp4", scratch, self.cancel)

    def library(self):
        return self._library.result()

    def load_model(self, model: Path, adapter: str | None) -> None:
        """Load the decoder (and the adapter named, if the model has it) in the background."""
        from composer.model.adapters import list_adapters
        from composer.model.checkpoint import cached_checkpoint

        adapter = adapter if adapter in list_adapters(model) else None
        self.aside.submit(cached_checkpoint, model, adapter)


def _open_library(folder):
    """The library at ``folder``, or ``folder`` itself when it does not open (the search then
    says why, and the music is written without references)."""
    from composer.retrieve.library import Library

    try:
        return Library.open(folder)
    except (ComposerError, OSError, ValueError):
        return folder


def _write(tmp, score, plan, analysis, video, soundfont, lanes, clock) -> dict[str, Path]:
    """Stage 7: the score, its audio (and the video, with one), notation and timeline, written
    into ``tmp``; the sound is made in the second lane meanwhile."""
    from composer.music.notation import write_musicxml
    from composer.plan.figure import plot_plan
    from composer.render import mux, render_midi

    files = {"score": tmp / "score.mid", "audio": tmp / "score.wav"}
    score.dump_midi(str(files["score"]))
    if video is not None:
        files["video"] = tmp / "video.mp4"

    def sound() -> None:
        render_midi(files["score"], files["audio"], soundfont=soundfont, cancel=lanes.cancel)
        if video is not None:
            mux(lanes.picture.result(), files["audio"], files["video"], cancel=lanes.cancel)
            (tmp / ".picture.mp4").unlink(missing_ok=True)

    audio = lanes.sound.submit(sound)
    files["musicxml"] = write_musicxml(score, tmp / "score.musicxml")
    files["timeline"] = tmp / "timeline.png"
    plot_plan(plan, analysis, score, files["timeline"])
    clock.lap("notation, timeline")
    audio.result()
    clock.lap("render and mux")
    return files
