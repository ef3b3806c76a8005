"""Open a video with PyAV and read what its container says, with one-line errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from composer.errors import ComposerError

# Packets read for the first frame's display matrix (decoders may hold a few back for
# reordering) before the picture counts as upright.
_ROTATION_PACKETS = 64


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares (nothing decoded yet)."""

    path: str
    width: int
    height: int
    pixel_aspect: float
    start_time: float  # presentation time of the video stream's start (s)
    duration: float | None  # declared duration of the video stream (s), if any
    average_rate: float | None
    codec: str
    has_audio: bool
    # Degrees clockwise that players turn the coded picture (its display matrix): 0, 90, 180 or
    # 270. width, height and pixel_aspect above describe the picture as displayed, turned.
    rotation: int = 0


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open ``path`` for reading with PyAV: every read of a media file goes through here."""
    # PyAV decodes metadata strictly as UTF-8 by default, so one Latin-1 title would make a
    # playable video unreadable; nothing here needs the exact text.
    return av.open(str(path), mode="r", metadata_errors="replace")


@contextlib.contextmanager
def open_video(path: str | Path) -> Iterator[tuple[av.container.InputContainer, VideoInfo]]:
    """Open ``path`` for decoding; raise ComposerError naming the file for anything unusable."""
    path = Path(path)
    if not path.exists():
        raise ComposerError(path, "no such file")
    if path.is_dir():
        raise ComposerError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise ComposerError(path, "is empty (0 bytes)")
    try:
        container = open_container(path)
    except av.error.EOFError:
        raise ComposerError(path, "ends before any video data (zero length or truncated)") from None
    except av.error.FFmpegError as e:
        raise ComposerError(path, f"not a readable video file ({_reason(e)})") from None
    try:
        if not container.streams:
            raise ComposerError(path, "contains no streams (a zero length video)")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise ComposerError(path, f"has no video stream (found: {', '.join(kinds)})")
        yield container, _info(path, container)
    finally:
        container.close()


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's declared properties without decoding it."""
    with open_video(path) as (_, info):
        return info


def _info(path: Path, container: av.container.InputContainer) -> VideoInfo:
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if not ctx.width or not ctx.height:
        raise ComposerError(path, "video stream has no frame size (damaged or truncated header)")
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
    tb = stream.time_base
    start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
    if stream.duration is not None and tb:
        duration = float(stream.duration * tb)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = None
    rate = stream.average_rate or stream.guessed_rate
    width, height, aspect = ctx.width, ctx.height, float(sar) if sar else 1.0
    rotation = _rotation(path, stream.index)
    if rotation % 180:  # on its side: a pixel sar wide and 1 high shows 1 wide and sar high
        width, height, aspect = height, width, 1 / aspect
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        pixel_aspect=aspect,
        start_time=start,
        duration=duration,
        average_rate=float(rate) if rate else None,
        codec=ctx.name,
        has_audio=bool(container.streams.audio),
        rotation=rotation,
    )


def _rotation(path: Path, index: int) -> int:
    """Degrees clockwise that players turn stream ``index``'s picture, to the nearest quarter turn.

    PyAV exposes the display matrix only on decoded frames, so this decodes the first frame in a
    container of its own (the caller's has not been read yet). A damaged start counts as upright:
    the decoding pass reports it.
    """
    try:
        with open_container(path) as container:
            stream = container.streams[index]
            for n, packet in enumerate(container.demux(stream)):
                for frame in packet.decode():
                    # frame.rotation is counter-clockwise, in -180..180 (FFmpeg's convention).
                    return round(-frame.rotation / 90) % 4 * 90
                if n >= _ROTATION_PACKETS:
                    break
    except av.error.FFmpegError:
        pass
    return 0


# FFmpeg's words for what it found, in a user's words.
_FFMPEG_WORDS = {
    "Invalid data found when processing input": "its data is not valid: damaged, or not a video",
}


def _reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    msg = msg.splitlines()[0].strip() if msg else type(e).__name__
    return _FFMPEG_WORDS.get(msg, msg)
