"""Synthetic clips with known scene changes, made with ffmpeg's lavfi sources.

Used by the tests and the demo: every shot is a different moving test pattern, so the true cut
and fade times are known exactly.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from composer.errors import ComposerError
from composer.outputs import atomic_path

# Moving lavfi sources that look unlike each other (colour, texture, motion). The random ones
# get fixed seeds, colours and points, so the same shots always give the same frames.
_SOURCES = [
    "testsrc2=size={w}x{h}:rate={fps}",
    "mandelbrot=size={w}x{h}:rate={fps}",
    "smptehdbars=size={w}x{h}:rate={fps},hue=H=2*PI*t/4",
    "gradients=size={w}x{h}:rate={fps}:speed=0.05:nb_colors=2:c0=0xff8000:c1=0x0040ff"
    ":x0=0:y0=0:x1={w}:y1={h}:seed=7",
    "sierpinski=size={w}x{h}:rate={fps}:type=triangle:seed=7",
    "rgbtestsrc=size={w}x{h}:rate={fps},rotate=angle=t",
    "testsrc=size={w}x{h}:rate={fps},hflip",
]


@dataclass(frozen=True)
class Shot:
    duration: float
    fade_in: float = 0.0  # seconds of fade from black at the shot's start
    fade_out: float = 0.0  # seconds of fade to black at the shot's end


def make_clip(
    path: str | Path,
    shots: list[Shot],
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    audio: bool = False,
) -> Path:
    """Write an H.264 MP4 of ``shots`` joined by hard cuts; returns the path.

    Cut times are the running sums of the shot durations (exact to a frame at ``fps``).
    """
    w, h = size
    parts, labels = [], []
    for i, shot in enumerate(shots):
        src = _SOURCES[i % len(_SOURCES)].format(w=w, h=h, fps=fps)
        chain = f"{src},trim=duration={shot.duration},setpts=PTS-STARTPTS,format=yuv420p"
        if shot.fade_in:
            chain += f",fade=t=in:st=0:d={shot.fade_in}"
        if shot.fade_out:
            chain += f",fade=t=out:st={shot.duration - shot.fade_out}:d={shot.fade_out}"
        parts.append(f"{chain}[v{i}]")
        labels.append(f"[v{i}]")
    graph = ";".join(parts) + ";" + "".join(labels) + f"concat=n={len(shots)}:v=1:a=0[v]"
    total = sum(s.duration for s in shots)
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-filter_complex",
        graph,
    ]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={total}"]
    cmd += ["-map", "[v]"] + (["-map", "0:a"] if audio else [])
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(fps)]
    if audio:
        cmd += ["-c:a", "aac"]
    with atomic_path(path) as tmp:
        proc = subprocess.run(cmd + [str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise ComposerError(path, f"ffmpeg could not make the clip ({last})")
    return Path(path)


def cut_times(shots: list[Shot]) -> list[float]:
    """The hard-cut times of a clip made from ``shots`` (between consecutive shots)."""
    out, t = [], 0.0
    for s in shots[:-1]:
        t += s.duration
        out.append(round(t, 6))
    return out
