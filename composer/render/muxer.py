"""Put the rendered music into the video: the picture copied, the music as loudness-normalised AAC.

The static ffmpeg from imageio-ffmpeg does the muxing (it has no ffprobe: PyAV inspects).
"""

from __future__ import annotations

import functools
import re
import subprocess
import threading
from pathlib import Path

import av

from composer.config import RenderConfig, duration_words, limits
from composer.errors import ComposerError
from composer.outputs import atomic_path
from composer.process import run
from composer.progress import log
from composer.video.probe import open_container, probe_video

# Used only when the output container cannot hold the source video codec (VP8 into .mp4).
# yuv420p (what players expect from H.264) needs even frame sizes.
_FALLBACK_VIDEO = [
    "-vf",
    "scale=trunc(iw/2)*2:trunc(ih/2)*2",
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",  # the picture is only carried over: speed matters more than size here
    "-crf",
    "18",
    "-pix_fmt",
    "yuv420p",
]
# The mp4 muxer's complaint when it has no codec tag for the video (output stream #0).
_NO_TAG = re.compile(r"Could not find tag for codec \S+ in stream #0\b")
_MOV_FAMILY = {".mp4", ".m4v", ".mov"}


def ffmpeg_exe() -> str:
    """Path of the static ffmpeg binary shipped by imageio-ffmpeg."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise ComposerError(None, f"no ffmpeg binary ({e}): pip install imageio-ffmpeg") from None


@functools.cache
def has_encoder(name: str) -> bool:
    """Whether the ffmpeg binary was built with the named encoder (e.g. "libx264")."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-encoders"],
        capture_output=True,
        text=True,
        errors="replace",
    ).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines())


def _container_start(path: Path) -> float:
    # ffmpeg shifts every input so that its earliest stream starts at 0; the video stream then
    # starts at (its own start - the container's start) in the output.
    with open_container(path) as container:
        start = container.start_time
    return start / av.time_base if start is not None else 0.0


def _audio_graph(
    offset: float, duration: float, original_audio_db: float | None, config: RenderConfig
) -> str:
    sr = config.sample_rate
    fmt = f"aformat=sample_rates={sr}:channel_layouts=stereo"
    # The music (input 1): cut to the video's length and normalised. loudnorm's output
    # timestamps jump (by ~0.1 s at about 2 s), so they are rewritten from the sample count,
    # starting at the video's first frame; then silence pads the music to the video's end.
    music = (
        f"[1:a]atrim=duration={duration:.6f},"
        f"loudnorm=I={config.loudness_lufs}:TP={config.true_peak_db},"
        f"aresample={sr},{fmt},asetpts=N/SR/TB+{offset:.6f}/TB,"
        f"apad=whole_dur={duration:.6f}"
    )
    if original_audio_db is None:
        return music + "[aout]"
    # The original track keeps its own timing: cut it to the video's span and pad its start
    # with silence where it begins after the first frame, so both inputs start together.
    original = (
        f"[0:a:0]atrim=start={offset:.6f},"
        f"aresample={sr}:async=1:first_pts={round(offset * sr)},"
        f"atrim=end={offset + duration:.6f},volume={original_audio_db}dB,{fmt}"
    )
    return (
        f"{music}[music];{original}[orig];"
        "[music][orig]amix=inputs=2:duration=longest:normalize=0[aout]"
    )


def _reason(stderr: str) -> str:
    # ffmpeg's threaded pipeline prints the cause first, then a cascade of generic
    # "error sending frames" / "nothing was written" lines: the first line says the most.
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "ffmpeg failed without a message"
    return re.sub(r"^\[[^]]+ @ 0x[0-9a-f]+\]\s*", "", lines[0])


# Every ffmpeg run: no prompts, errors only, overwrite the (temporary) output.
_QUIET = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
# Video codecs an .mp4/.mov holds as they are (PyAV's codec names).
_MOV_CODECS = {"h264", "hevc", "mpeg4", "av1", "mjpeg", "prores", "vp9"}


def picture_for(
    video_path: str | Path,
    container: str,
    scratch: str | Path,
    cancel: threading.Event | None = None,
) -> Path:
    """The video itself if ``container`` (".mp4", ...) can hold its picture as it is, else a
    silent H.264 copy of the picture written to ``scratch``.

    compose() runs this while the music is being written, so the re-encode (VP8 WebM into
    .mp4) costs no wall time; mux() then copies the picture.
    """
    video_path = Path(video_path)
    info = probe_video(video_path)
    if container.lower() not in _MOV_FAMILY or info.codec in _MOV_CODECS:
        return video_path
    if not has_encoder("libx264"):
        return video_path  # mux() will say what is missing
    cmd = [
        ffmpeg_exe(),
        *_QUIET,
        "-i",
        str(video_path),
        "-map",
        "0:v:0",
        "-an",
        *_FALLBACK_VIDEO,
        "-threads",
        "1",
        str(scratch),
    ]  # fmt: skip  (one core: the decoder has the other)
    result = run(cmd, cancel)
    if result.returncode != 0:
        raise ComposerError(video_path, f"ffmpeg could not re-encode: {_reason(result.stderr)}")
    return Path(scratch)


def mux(
    video_path: str | Path,
    audio_path: str | Path,
    out_path: str | Path,
    *,
    original_audio_db: float | None = None,
    config: RenderConfig = RenderConfig(),  # noqa: B008 (frozen: sharing is safe)
    overwrite: bool = False,
    cancel: threading.Event | None = None,
) -> Path:
    """Write ``out_path``: the video's picture with ``audio_path`` as its soundtrack.

    The music starts at the video's first frame and is cut (or padded) to the video's length.
    By default it replaces any audio the video has; with ``original_audio_db`` (e.g. -12) the
    original audio is kept, mixed under the music at that gain.
    """
    video_path, audio_path, out_path = Path(video_path), Path(audio_path), Path(out_path)
    info = probe_video(video_path)
    if not audio_path.is_file():
        raise ComposerError(audio_path, "no such file")
    if out_path.suffix.lower() == ".webm":
        raise ComposerError(out_path, "WebM cannot hold AAC audio: write .mp4, .mov or .mkv")
    if info.duration is None:
        raise ComposerError(video_path, "declares no duration to fit the music to")
    if info.duration > (longest := limits().max_render_s):
        raise ComposerError(
            video_path,
            f"declares {duration_words(info.duration)}; the longest composer scores is "
            f"{duration_words(longest)} (COMPOSER_MAX_RENDER_S raises it)",
        )
    if original_audio_db is not None and not info.has_audio:
        log.warning("%s has no audio track to keep; muxing the music alone", video_path)
        original_audio_db = None
    offset = max(0.0, info.start_time - _container_start(video_path))
    graph = _audio_graph(offset, info.duration, original_audio_db, config)
    ffmpeg = ffmpeg_exe()

    with atomic_path(out_path, overwrite=overwrite, kind="video") as tmp:

        def command(video_codec: list[str]) -> list[str]:
            return [
                ffmpeg,
                *_QUIET,
                "-i",
                str(video_path),
                "-i",
                str(audio_path),
                "-filter_complex",
                graph,
                "-map",
                "0:v:0",
                "-map",
                "[aout]",
                *video_codec,
                "-c:a",
                "aac",
                "-b:a",
                config.aac_bitrate,
                *(["-movflags", "+faststart"] if out_path.suffix.lower() in _MOV_FAMILY else []),
                str(tmp),
            ]

        result = run(command(["-c:v", "copy"]), cancel)
        if result.returncode != 0 and _NO_TAG.search(result.stderr):
            if not has_encoder("libx264"):
                raise ComposerError(
                    out_path,
                    f"cannot hold {info.codec} video, and this ffmpeg "
                    "has no libx264 to re-encode it",
                )
            log.warning(
                "%s cannot hold %s video: re-encoding it with libx264", out_path.suffix, info.codec
            )
            result = run(command(_FALLBACK_VIDEO), cancel)
        if result.returncode != 0:
            raise ComposerError(out_path, f"ffmpeg failed: {_reason(result.stderr)}")
    log.info("muxed %s", out_path)
    return out_path
