"""Stage 1 on clips made here with known cuts, fades, timestamps and aspect ratios."""

from __future__ import annotations

import tracemalloc

import pytest
from conftest import ffmpeg

from composer.errors import ComposerError
from composer.video import analyze
from composer.video.synthetic import Shot, cut_times, make_clip

FPS = 25
FRAME = 1 / FPS
# Durations are whole frames at 25 fps so the true cut times are exact.
SHOTS = [
    Shot(2.0),
    Shot(1.6),
    Shot(2.0, fade_out=0.8),
    Shot(2.4, fade_in=0.8),
    Shot(2.0),
    Shot(2.0),
]


@pytest.fixture(scope="module")
def clip(clip_dir):
    return make_clip(clip_dir / "known_cuts.mp4", SHOTS, fps=FPS, audio=True)


@pytest.fixture(scope="module")
def result(clip):
    return analyze(clip)


def test_hard_cuts_found_at_known_times(result):
    hard = [c.time for c in result.cuts if c.kind == "cut"]
    expected = [t for i, t in enumerate(cut_times(SHOTS)) if i not in (2,)]  # 2: fade out/in
    assert len(hard) == len(expected)
    for got, want in zip(hard, expected, strict=True):
        assert abs(got - want) <= FRAME + 1e-6


def test_fades_reported_as_fades_not_cuts(result):
    fades = [c for c in result.cuts if c.kind == "fade"]
    assert [f.direction for f in fades] == ["out", "in"]
    fade_out_start = sum(s.duration for s in SHOTS[:3]) - 0.8
    fade_in_start = sum(s.duration for s in SHOTS[:3])
    assert abs(fades[0].time - fade_out_start) <= 0.2
    assert abs(fades[1].time - fade_in_start) <= 0.2
    assert all(0.4 <= f.duration <= 1.0 for f in fades)
    assert all(0 < c.strength <= 1 for c in result.cuts)


def test_basic_properties(result):
    assert result.duration == pytest.approx(sum(s.duration for s in SHOTS), abs=FRAME)
    assert result.fps == pytest.approx(FPS, rel=0.01)
    assert (result.width, result.height) == (320, 240)
    assert result.frame_count == round(result.duration * FPS)
    assert result.has_audio
    assert not result.variable_frame_rate
    assert len(result.scenes) == len(result.cuts) + 1


def test_curves_keyframes_and_beats(result):
    m = result.motion
    assert len(m.times) == len(m.energy) > 10
    assert all(0.0 <= e <= 1.0 for e in m.energy)
    assert m.times == sorted(m.times)
    # The test patterns move: motion is well above zero in every shot.
    assert result.mean_motion() > 0.05
    c = result.colour
    assert len(c.times) == len(c.brightness) == len(c.saturation) == len(c.warmth) > 10
    assert all(0.0 <= v <= 1.0 for v in c.brightness + c.saturation + c.warmth)
    # Every scene has keyframes, at most 3, inside the scene, as real images.
    by_scene = {}
    for k in result.keyframes:
        by_scene.setdefault(k.scene, []).append(k)
        sc = result.scenes[k.scene]
        assert sc.start <= k.time < sc.end
        assert k.image.size[0] == 320  # the keyframe width, capped at the video's own
    assert set(by_scene) == set(range(len(result.scenes)))
    assert all(1 <= len(v) <= 3 for v in by_scene.values())
    assert all(0.0 <= b <= result.duration for b in result.beats)


def test_synthetic_clips_are_the_same_bytes_every_time(tmp_path):
    # Every lavfi source is seeded: a fixture that changed between runs made a plan test flaky.
    shots = [Shot(0.6) for _ in range(7)]  # one shot of each source
    a = make_clip(tmp_path / "a.mp4", shots, size=(96, 64))
    b = make_clip(tmp_path / "b.mp4", shots, size=(96, 64))
    assert a.read_bytes() == b.read_bytes()


def test_no_cuts_in_a_single_moving_shot(clip_dir):
    path = make_clip(clip_dir / "one_shot.mp4", [Shot(4.0)], fps=FPS)
    r = analyze(path)
    assert r.cuts == []
    assert len(r.scenes) == 1


def test_non_zero_start_time_is_honoured(clip, clip_dir):
    shifted = clip_dir / "shifted.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-output_ts_offset", "3.5", str(shifted))
    r = analyze(shifted)
    assert r.start_time == pytest.approx(3.5, abs=0.1)
    hard = [c.time for c in r.cuts if c.kind == "cut"]
    assert hard[0] == pytest.approx(2.0, abs=FRAME + 1e-6)  # times count from the first frame


def test_variable_frame_rate(clip, clip_dir):
    vfr = clip_dir / "vfr.mp4"
    # Drop every third frame and keep the original timestamps (like goldeneye-vfr-drop3).
    ffmpeg(
        "-i",
        str(clip),
        "-vf",
        "select='not(eq(mod(n\\,3)\\,2))'",
        "-fps_mode",
        "vfr",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        str(vfr),
    )
    r = analyze(vfr)
    assert r.variable_frame_rate
    assert r.duration == pytest.approx(sum(s.duration for s in SHOTS), abs=3 * FRAME)
    hard = [c.time for c in r.cuts if c.kind == "cut"]
    assert hard[0] == pytest.approx(2.0, abs=2 * FRAME + 1e-6)


def test_anamorphic_pixels_give_display_aspect_keyframes(clip_dir):
    path = clip_dir / "anamorphic.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=352x288:rate=25:duration=2",
        "-vf",
        "setsar=16/11",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    r = analyze(path)
    assert r.pixel_aspect == pytest.approx(16 / 11, rel=1e-3)
    w, h = r.keyframes[0].image.size
    assert w / h == pytest.approx(352 * 16 / 11 / 288, rel=0.03)


def test_memory_is_bounded_by_resolution_not_length(clip_dir):
    short = make_clip(clip_dir / "short.mp4", [Shot(4.0)] * 2, size=(320, 180), fps=FPS)
    long = make_clip(clip_dir / "long.mp4", [Shot(4.0)] * 20, size=(320, 180), fps=FPS)

    def peak(path) -> int:
        tracemalloc.start()
        analyze(path)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(short)  # warm caches (imports, codec tables) before measuring
    # Ten times the frames; the peak may grow by the per-frame scalars and keyframes only.
    assert peak(long) < 2 * peak(short) + 4_000_000


def test_progress_is_reported(clip):
    seen = []
    analyze(clip, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen and all(s == "analyze" for s, _, _ in seen)
    dones = [d for _, d, _ in seen]
    assert dones == sorted(dones)
    assert seen[-1][1] == pytest.approx(seen[-1][2])


# --- bad input ---------------------------------------------------------------------------------


def _error(path) -> str:
    with pytest.raises(ComposerError) as e:
        analyze(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_path(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    assert "not a readable video" in _error(p)


def test_audio_only(tmp_path):
    p = tmp_path / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(p))
    assert "no video stream" in _error(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    assert "empty" in _error(p)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_zero_length_video(tmp_path, suffix):
    p = tmp_path / f"zero{suffix}"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-frames:v",
        "0",
        "-c:v",
        "libx264",
        str(p),
    )
    assert "zero length" in _error(p)


def test_truncated_file(clip, tmp_path):
    # moov first (faststart), so the header survives and the frames run out early.
    whole = tmp_path / "whole.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-movflags", "+faststart", str(whole))
    data = whole.read_bytes()
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(data[: len(data) // 2])
    msg = _error(cut)
    assert "truncated" in msg or "damaged" in msg


def test_truncated_file_without_index(clip, tmp_path):
    data = clip.read_bytes()  # moov at the end: cutting it loses the index
    cut = tmp_path / "truncated_noindex.mp4"
    cut.write_bytes(data[: len(data) // 2])
    _error(cut)


def test_a_gap_in_the_timestamps_before_a_fade_to_black():
    """A damaged file can jump seconds between two frames; the fade finder still measures the
    picture before the black (found by the fuzz, tests/test_fuzz.py)."""
    import numpy as np

    from composer.config import AnalysisConfig
    from composer.video.scenes import _black_transitions

    t = np.array([0.0, 0.04, 0.08, 4.0, 4.04, 4.08])  # 3.9 s between frames 2 and 3
    b = np.array([120.0, 120.0, 120.0, 2.0, 2.0, 2.0])
    fades, abrupt = _black_transitions(t, b, AnalysisConfig())
    assert len(fades) + len(abrupt) == 1
