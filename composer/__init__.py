"""composer: score a video with music you can edit.

The pipeline (see DESIGN.md) is a chain of plain functions, one per stage, each returning a typed
dataclass from :mod:`composer.types`. Stage functions are re-exported here.
"""

from composer.errors import ComposerError
from composer.render import mux, render_midi
from composer.types import Cut, Keyframe, VideoAnalysis
from composer.video import analyze

__version__ = "0.1.0"

__all__ = [
    "ComposerError",
    "Cut",
    "Keyframe",
    "VideoAnalysis",
    "__version__",
    "analyze",
    "mux",
    "render_midi",
]
