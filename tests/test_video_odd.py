"""Stage 1 and the muxer on videos with odd containers: non-UTF-8 metadata, display rotation."""

from __future__ import annotations

import os

import av
import cv2
import numpy as np
import pytest
from conftest import ffmpeg

from composer.render import mux
from composer.video import analyze, probe_video
from composer.video.probe import open_container

W, H = 160, 96
# Left half white, right half black: where the white half lands shows which way a frame turned.
HALVES = f"color=c=black:s={W}x{H}:r=25:d=1,drawbox=x=0:y=0:w={W // 2}:h={H}:c=white:t=fill"


def _encode(path, source: str, *extra: str) -> None:
    ffmpeg("-f", "lavfi", "-i", source, "-c:v", "libx264", "-pix_fmt", "yuv420p", *extra, str(path))


@pytest.fixture(scope="module")
def music(clip_dir):
    path = clip_dir / "odd_music.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(path))
    return path


@pytest.fixture(scope="module")
def halves(clip_dir):
    path = clip_dir / "halves.mp4"
    _encode(path, HALVES)
    return path


@pytest.fixture(scope="module")
def latin1_title(clip_dir):
    path = clip_dir / "latin1_title.mp4"
    # A str that the OS encodes back to these exact bytes: ffmpeg writes them as they are.
    _encode(path, HALVES, "-metadata", os.fsdecode(b"title=Caf\xe9!"))
    with pytest.raises(UnicodeDecodeError):  # the file really is one that PyAV's default rejects
        av.open(str(path)).close()
    return path


def test_latin1_metadata_analyzes(latin1_title):
    a = analyze(latin1_title)
    assert (a.width, a.height, a.rotation) == (W, H, 0)
    assert a.frame_count == 25 and a.keyframes
    with open_container(latin1_title) as c:
        assert c.metadata["title"] == "Caf\ufffd!"


def test_latin1_metadata_muxes(latin1_title, music, tmp_path):
    out = mux(latin1_title, music, tmp_path / "out.mp4")
    with open_container(out) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1


def _white_side(rgb: np.ndarray) -> str:
    """Which edge of the picture the white half lies against."""
    h, w = rgb.shape[:2]
    means = {
        "left": rgb[:, : w // 2].mean(),
        "right": rgb[:, w // 2 :].mean(),
        "top": rgb[: h // 2].mean(),
        "bottom": rgb[h // 2 :].mean(),
    }
    return max(means, key=means.get)


# ffmpeg's -display_rotation is counter-clockwise; players then turn the picture clockwise by
# `clockwise` degrees. A phone held upright writes -90.
ROTATIONS = [
    pytest.param(-90, 90, cv2.ROTATE_90_CLOCKWISE, "top", id="cw90-phone"),
    pytest.param(180, 180, cv2.ROTATE_180, "right", id="cw180"),
    pytest.param(90, 270, cv2.ROTATE_90_COUNTERCLOCKWISE, "bottom", id="cw270"),
]


def _rotated(src, dest, ccw: int):
    ffmpeg("-display_rotation:v:0", str(ccw), "-i", str(src), "-c", "copy", str(dest))
    return dest


@pytest.mark.parametrize(("ccw", "clockwise", "turn", "white"), ROTATIONS)
def test_rotated_video_is_measured_upright(halves, tmp_path, ccw, clockwise, turn, white):
    path = _rotated(halves, tmp_path / "rotated.mp4", ccw)
    size = (H, W) if clockwise % 180 else (W, H)
    info = probe_video(path)
    assert ((info.width, info.height), info.rotation) == (size, clockwise)
    upright, plain = analyze(path), analyze(halves)
    assert ((upright.width, upright.height), upright.rotation) == (size, clockwise)
    assert upright.frame_count == plain.frame_count
    assert len(upright.keyframes) == len(plain.keyframes) > 0
    for got, ref in zip(upright.keyframes, plain.keyframes, strict=True):
        image = np.asarray(got.image)
        assert image.shape[:2] == size[::-1]
        assert _white_side(image) == white
        expected = cv2.rotate(np.asarray(ref.image), turn)
        assert np.abs(image.astype(int) - expected).mean() < 4  # JPEG noise only


def test_rotated_anamorphic_keeps_display_aspect(clip_dir, tmp_path):
    # Pixels twice as wide as high: shown 320x96, then on its side 96 wide and 320 high.
    wide = clip_dir / "anamorphic.mp4"
    _encode(wide, HALVES + ",setsar=2")
    a = analyze(_rotated(wide, tmp_path / "rotated.mp4", -90))
    assert (a.width, a.height, a.rotation) == (H, W, 90)
    assert a.pixel_aspect == pytest.approx(0.5)
    w, h = a.keyframes[0].image.size
    assert h / w == pytest.approx(320 / 96, rel=0.05)
    assert _white_side(np.asarray(a.keyframes[0].image)) == "top"


def test_mux_keeps_rotation(halves, music, tmp_path):
    path = _rotated(halves, tmp_path / "rotated.mp4", -90)
    out = mux(path, music, tmp_path / "out.mp4")
    assert probe_video(out).rotation == 90
