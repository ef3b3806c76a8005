"""``composer demo``: the main job on built-in defaults, with nothing but what composer makes.

It makes a 16 s clip with known cuts and fades, composes for it (analyse, describe, plan,
generate with the shipped model, arrange, render, mux), then composes for a text-only request.
"""

from __future__ import annotations

from pathlib import Path

from composer.outputs import check_folder_target, write_marker
from composer.pipeline import ComposeResult, compose
from composer.progress import ProgressFn, no_progress
from composer.video.synthetic import Shot, make_clip

DEMO_SHOTS = [Shot(4.0), Shot(2.0), Shot(4.0, fade_out=1.0), Shot(2.0, fade_in=1.0), Shot(4.0)]
DEMO_PROMPT = "a gentle folk song in G major for flute and guitar, 20 seconds"


def run_demo(
    outdir: str | Path, seed: int = 0, progress: ProgressFn = no_progress
) -> dict[str, ComposeResult]:
    """Compose for the demo clip and for the demo prompt; returns both results by name."""
    out = Path(outdir)
    # The demo replaces its own earlier output, and nothing else (composer.outputs).
    check_folder_target(out, force=True)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, ["clip.mp4", "video", "text"])
    clip = make_clip(out / "clip.mp4", DEMO_SHOTS, size=(640, 360), audio=True)
    return {
        "video": compose(clip, "", out / "video", seed=seed, force=True, progress=progress),
        "text": compose(None, DEMO_PROMPT, out / "text", seed=seed, force=True, progress=progress),
    }
