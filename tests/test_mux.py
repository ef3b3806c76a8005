"""Stage 7, mux: the rendered music put into the video with the static ffmpeg."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import av
import numpy as np
import pretty_midi
import pytest

from composer.errors import ComposerError
from composer.render import mux, render_midi
from composer.render.muxer import ffmpeg_exe

TIM = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "videos"
BBB_WEBM = SHARED_VIDEOS / "moviepy_big_buck_bunny_0_30.webm"
AAC_PRIMING_S = 1024 / 44100  # the encoder delay before an AAC stream's first real sample
SINE_HZ = 1000


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True
    )


def streams(path: Path) -> dict[str, list[dict]]:
    """Per stream type: codec, start and duration in seconds; plus the container duration."""
    with av.open(str(path)) as c:
        out: dict[str, list[dict]] = {"video": [], "audio": [], "other": []}
        for s in c.streams:
            tb = s.time_base
            out.setdefault(s.type, out["other"]).append(
                {
                    "codec": s.codec_context.name,
                    "start": float(s.start_time * tb) if s.start_time is not None else None,
                    "duration": float(s.duration * tb) if s.duration is not None else None,
                    "channels": getattr(s.codec_context, "channels", None),
                    "rate": getattr(s.codec_context, "sample_rate", None),
                }
            )
        out["container_duration"] = [{"seconds": c.duration / av.time_base}]
        return out


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def decode_audio(path: Path) -> tuple[float, int, np.ndarray]:
    """(time of the first decoded sample, sample rate, float samples as channels x n)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        first, chunks = None, []
        for frame in c.decode(stream):
            if first is None:
                first = float(frame.pts * frame.time_base)
            chunks.append(frame.to_ndarray().reshape(len(frame.layout.channels), -1))
        return first, stream.codec_context.sample_rate, np.concatenate(chunks, axis=1)


def sine_level(path: Path, start_s: float, end_s: float) -> float:
    """Amplitude of the SINE_HZ component of the first channel between two times."""
    first, sr, data = decode_audio(path)
    x = data[0, round((start_s - first) * sr) : round((end_s - first) * sr)]
    t = np.arange(x.size) / sr
    return float(2 * np.abs(np.mean(x * np.exp(-2j * np.pi * SINE_HZ * t))))


def music_onset(path: Path, level: float = 0.1) -> float:
    first, sr, data = decode_audio(path)
    env = np.abs(data).max(axis=0)
    return first + int(np.argmax(env > level * env.max())) / sr


def score(tmp: Path, name: str, notes: list[tuple[float, float]]) -> Path:
    """A piano score of (start, end) notes rendered to WAV with the small soundfont."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(100, 60 + i % 12, a, b) for i, (a, b) in enumerate(notes)]
    pm.instruments.append(piano)
    pm.write(str(tmp / f"{name}.mid"))
    return Path(render_midi(tmp / f"{name}.mid", tmp / f"{name}.wav", soundfont=TIM).path)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3 s 320x240 H.264 clip with a stereo 1 kHz tone, shifted copies, and two scores."""
    tmp = tmp_path_factory.mktemp("mux")
    clip = tmp / "clip.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25:duration=3",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={SINE_HZ}:sample_rate=44100:duration=3",
        "-ac",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(clip),
    )
    # The picture starts 0.5 s after the sound: the video stream's start time is 0.5 s.
    late_video = tmp / "late_video.mp4"
    ffmpeg(
        "-itsoffset",
        "0.5",
        "-i",
        str(clip),
        "-i",
        str(clip),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        str(late_video),
    )
    # Every stream shifted by 1 s.
    shifted = tmp / "shifted.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-output_ts_offset", "1.0", str(shifted))
    silent = tmp / "silent.mp4"
    ffmpeg("-i", str(clip), "-an", "-c", "copy", str(silent))
    return {
        "dir": tmp,
        "clip": clip,
        "late_video": late_video,
        "shifted": shifted,
        "silent": silent,
        # Notes for 5 s: longer than the clip, so the mux must cut it.
        "long": score(tmp, "long", [(i * 0.5, i * 0.5 + 0.45) for i in range(10)]),
        # One short note: the music is silent after about 2 s.
        "short": score(tmp, "short", [(0.0, 0.2)]),
    }


def test_replaces_the_audio_and_copies_the_video(media: dict[str, Path], tmp_path: Path):
    out = mux(media["clip"], media["long"], tmp_path / "out.mp4")
    assert out == tmp_path / "out.mp4"
    info = streams(out)
    assert len(info["video"]) == 1 and len(info["audio"]) == 1 and not info["other"]
    assert info["video"][0]["codec"] == "h264"
    assert video_packets(out) == video_packets(media["clip"])  # copied, not re-encoded
    audio = info["audio"][0]
    assert (audio["codec"], audio["channels"], audio["rate"]) == ("aac", 2, 44100)
    assert info["container_duration"][0]["seconds"] == pytest.approx(3.0, abs=0.1)
    assert audio["duration"] == pytest.approx(3.0, abs=0.1)  # the 5 s of music were cut
    assert music_onset(out) == pytest.approx(0.0, abs=0.03)


def test_keeps_the_original_audio_under_the_music(media: dict[str, Path], tmp_path: Path):
    replaced = mux(media["clip"], media["short"], tmp_path / "replaced.mp4")
    mixed = mux(media["clip"], media["short"], tmp_path / "mixed.mp4", original_audio_db=-12)
    info = streams(mixed)
    assert len(info["video"]) == 1 and len(info["audio"]) == 1
    assert info["container_duration"][0]["seconds"] == pytest.approx(3.0, abs=0.1)
    # After the music has died away, only the original's 1 kHz tone is left, 12 dB down.
    original = sine_level(media["clip"], 2.4, 2.9)
    assert original > 0.05
    assert 20 * np.log10(sine_level(mixed, 2.4, 2.9) / original) == pytest.approx(-12, abs=1)
    assert sine_level(replaced, 2.4, 2.9) < original / 1000


@pytest.mark.parametrize("name", ["late_video", "shifted"])
def test_music_starts_with_the_first_frame(media: dict[str, Path], tmp_path: Path, name: str):
    source = streams(media[name])["video"][0]
    assert source["start"] > 0.4
    for db in (None, -12):
        out = mux(media[name], media["long"], tmp_path / f"{name}_{db}.mp4", original_audio_db=db)
        info = streams(out)
        assert len(info["audio"]) == 1
        video_start = info["video"][0]["start"]
        # The audio stream starts with the picture (its first AAC frame is encoder priming).
        assert info["audio"][0]["start"] == pytest.approx(video_start - AAC_PRIMING_S, abs=0.01)
        assert music_onset(out) == pytest.approx(video_start, abs=0.03)
        assert info["audio"][0]["duration"] == pytest.approx(3.0, abs=0.1)


def test_original_audio_requested_but_absent(
    media: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="composer"):
        out = mux(media["silent"], media["long"], tmp_path / "out.mp4", original_audio_db=-12)
    assert len(streams(out)["audio"]) == 1
    assert "no audio track to keep" in caplog.text


@pytest.mark.skipif(not BBB_WEBM.exists(), reason=f"shared clip absent: {BBB_WEBM}")
def test_vp8_webm_into_mp4_is_reencoded(
    media: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="composer"):
        out = mux(BBB_WEBM, media["long"], tmp_path / "bbb.mp4")
    assert "re-encoding it with libx264" in caplog.text
    info = streams(out)
    assert [v["codec"] for v in info["video"]] == ["h264"]
    assert [a["codec"] for a in info["audio"]] == ["aac"]
    assert info["container_duration"][0]["seconds"] == pytest.approx(30.0, abs=0.1)
    assert info["audio"][0]["duration"] == pytest.approx(30.0, abs=0.1)
    # Matroska holds VP8, so there the picture is copied.
    mkv = mux(BBB_WEBM, media["long"], tmp_path / "bbb.mkv")
    assert [v["codec"] for v in streams(mkv)["video"]] == ["vp8"]


# --- bad input -------------------------------------------------------------------------------


def test_missing_inputs(media: dict[str, Path], tmp_path: Path):
    with pytest.raises(ComposerError, match="no such file"):
        mux(tmp_path / "nope.mp4", media["long"], tmp_path / "out.mp4")
    with pytest.raises(ComposerError, match="no such file"):
        mux(media["clip"], tmp_path / "nope.wav", tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_is_one_line_and_leaves_nothing(media: dict[str, Path], tmp_path: Path):
    fake = tmp_path / "music.wav"
    fake.write_text("not audio\n")
    with pytest.raises(ComposerError, match="ffmpeg failed: ") as err:
        mux(media["clip"], fake, tmp_path / "out.mp4")
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == [fake]


def test_webm_output_is_refused(media: dict[str, Path], tmp_path: Path):
    with pytest.raises(ComposerError, match="WebM cannot hold AAC"):
        mux(media["clip"], media["long"], tmp_path / "out.webm")


def test_existing_output_is_kept_unless_overwrite(media: dict[str, Path], tmp_path: Path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(ComposerError, match="already exists"):
        mux(media["clip"], media["long"], out)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(ComposerError, match="is not a video file"):  # not composer's to replace
        mux(media["clip"], media["long"], out, overwrite=True)
    assert out.read_bytes() == b"keep me"
    out.unlink()
    mux(media["clip"], media["long"], out)
    mux(media["clip"], media["long"], out, overwrite=True)
    assert len(streams(out)["audio"]) == 1
