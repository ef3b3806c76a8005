"""`composer doctor`: check the native pieces the pipeline needs, and how to fix what is missing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import ComposerError

if TYPE_CHECKING:
    from composer.render.soundfont import SoundfontCandidate

# Each check imports what it checks, so one missing piece cannot stop the report.


@dataclass(frozen=True)
class Check:
    """One dependency: whether it works, what was found, and how to fix it if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _libfluidsynth() -> Check:
    from composer.render.synth import FLUIDSYNTH_FIX, fluidsynth_version, load_fluidsynth

    try:
        fs = load_fluidsynth()
        return Check(
            "libfluidsynth",
            True,
            f"libfluidsynth {fluidsynth_version()} ({getattr(fs, 'lib', '?')}), "
            f"pyfluidsynth {getattr(fs, 'api_version', '?')}",
        )
    except ComposerError as e:
        return Check("libfluidsynth", False, e.problem, FLUIDSYNTH_FIX)


def _soundfont(explicit: str | Path | None) -> Check:
    from composer.render.soundfont import INSTALL_FIX, find_soundfont, soundfont_candidates

    candidates = soundfont_candidates(explicit)
    try:
        path = find_soundfont(explicit)
    except ComposerError as e:
        # e.path is set when a path the user named does not exist.
        fix = "correct that path, or leave it out to use a found one" if e.path else INSTALL_FIX
        return Check("soundfont", False, f"{e}{_missing(candidates, e.path)}", fix)
    source = next(c.source for c in candidates if c.path == path)
    return Check("soundfont", True, f"{path} (from {source}){_missing(candidates, None)}")


def _missing(candidates: list[SoundfontCandidate], reported: str | None) -> str:
    missing = [
        f"{c.path} ({c.source})"
        for c in candidates
        if c.path and not c.exists and str(c.path) != reported
    ]
    return f"; missing: {', '.join(missing)}" if missing else ""


def _ffmpeg() -> Check:
    from composer.render.muxer import ffmpeg_exe, has_encoder

    fix = "pip install --force-reinstall imageio-ffmpeg"
    try:
        exe = ffmpeg_exe()
        out = subprocess.run(
            [exe, "-hide_banner", "-version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
        ).stdout
    except (ComposerError, OSError, subprocess.TimeoutExpired) as e:
        return Check("ffmpeg", False, str(e), fix)
    version = out.splitlines()[0].split(" Copyright")[0] if out else "no version output"
    x264 = "with libx264" if has_encoder("libx264") else "WITHOUT libx264 (no re-encode fallback)"
    return Check("ffmpeg", True, f"{exe}: {version}, {x264}")


def _pyav() -> Check:
    try:
        import av
    except ImportError as e:
        return Check("PyAV", False, str(e), "pip install av")
    libs = ", ".join(
        f"{name} {'.'.join(map(str, v))}" for name, v in sorted(av.library_versions.items())
    )
    return Check("PyAV", True, f"av {av.__version__} ({libs})")


def _opencv() -> Check:
    try:
        import cv2
    except ImportError as e:
        return Check("OpenCV", False, str(e), "pip install opencv-python")
    return Check("OpenCV", True, f"cv2 {cv2.__version__}")


def check(soundfont: str | Path | None = None) -> list[Check]:
    """Run every check; ``soundfont`` is the --soundfont the user would pass, if any."""
    probes: list[tuple[str, Callable[[], Check]]] = [
        ("libfluidsynth", _libfluidsynth),
        ("soundfont", lambda: _soundfont(soundfont)),
        ("ffmpeg", _ffmpeg),
        ("PyAV", _pyav),
        ("OpenCV", _opencv),
    ]
    checks = []
    for name, probe in probes:
        try:
            checks.append(probe())
        except ImportError as e:  # a Python dependency of the checking code itself
            checks.append(Check(name, False, str(e), "pip install -e ."))
    return checks


def format_report(checks: list[Check]) -> str:
    """The checks as aligned lines, with the fix under each failure and a summary line."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    failed = [c.name for c in checks if not c.ok]
    lines.append(
        f"{len(failed)} problem(s): {', '.join(failed)}" if failed else "all checks passed"
    )
    return "\n".join(lines)
