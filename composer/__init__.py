"""composer: score a video with music you can edit.

The pipeline (see DESIGN.md) is a chain of plain functions, one per stage, each returning a typed
dataclass from :mod:`composer.types`:

    analyze(video) -> VideoAnalysis                 describe(analysis) -> Brief
    plan(brief, request) -> Plan                    find_references(plan) -> References
    generate(request) -> GenerationResult           arrange(result, plan) -> score
    perform(score, plan) -> score                   render(midi, wav) -> RenderedAudio
    mux(video, wav, out) -> path                    edit(folder or midi, ...) -> EditResult

and ``compose`` runs them in order, from a video and/or a text request to a folder of files.
"""

__version__ = "0.1.0"

from composer.arrange import arrange  # noqa: E402 (the stages may read __version__)
from composer.describe import describe  # noqa: E402
from composer.edit import EditResult, edit  # noqa: E402
from composer.errors import ComposerError  # noqa: E402
from composer.perform import perform  # noqa: E402
from composer.plan import plan  # noqa: E402
from composer.plan.request import PromptFacts  # noqa: E402
from composer.render import mux  # noqa: E402
from composer.render import render_midi as render  # noqa: E402
from composer.types import (  # noqa: E402
    Brief,
    GenerationRequest,
    GenerationResult,
    Plan,
    References,
    RenderedAudio,
    VideoAnalysis,
)
from composer.video import analyze  # noqa: E402

# compose, generate and find_references load the decoder's and the sentence model's libraries
# (torch, transformers): imported when first used, so that `import composer` stays fast.
_LAZY = {
    "compose": "composer.pipeline",
    "ComposeResult": "composer.pipeline",
    "ComposeRecord": "composer.pipeline",
    "generate": "composer.model.generate",
    "find_references": "composer.retrieve.references",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'composer' has no attribute {name!r}")


__all__ = [
    "Brief", "ComposeRecord", "ComposeResult", "ComposerError", "EditResult", "GenerationRequest",
    "GenerationResult", "Plan", "PromptFacts", "References", "RenderedAudio", "VideoAnalysis",
    "__version__", "analyze", "arrange", "compose", "describe", "edit", "find_references",
    "generate", "mux", "perform", "plan", "render",
]  # fmt: skip
