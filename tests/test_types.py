from composer.types import (
    ColourCurves,
    Cut,
    Keyframe,
    MotionCurve,
    RenderedAudio,
    Scene,
    VideoAnalysis,
)


def _analysis() -> VideoAnalysis:
    return VideoAnalysis(
        path="x.mp4",
        duration=12.5,
        fps=25.0,
        width=704,
        height=576,
        pixel_aspect=1.4545,
        start_time=1.0,
        frame_count=312,
        cuts=[Cut(2.0, "cut", 0.8), Cut(5.0, "fade", 0.5, direction="out", duration=0.6)],
        scenes=[Scene(0.0, 2.0), Scene(2.0, 5.3), Scene(5.3, 12.5)],
        motion=MotionCurve(times=[0.04, 0.12], energy=[0.1, 0.3]),
        beats=[0.5, 1.25],
        colour=ColourCurves(times=[0.0], brightness=[0.4], saturation=[0.2], warmth=[0.55]),
        keyframes=[Keyframe(1.0, 0), Keyframe(3.0, 1)],
        variable_frame_rate=True,
        has_audio=True,
    )


def test_video_analysis_json_round_trip(tmp_path):
    a = _analysis()
    b = VideoAnalysis.from_json(a.to_json())
    assert b == a
    assert isinstance(b.cuts[1], Cut) and b.cuts[1].direction == "out"
    assert isinstance(b.motion, MotionCurve)
    a.save(tmp_path / "a.json")
    assert VideoAnalysis.load(tmp_path / "a.json") == a
    assert not list(tmp_path.glob(".*part*")), "temporary file left behind"
    assert (tmp_path / "a.json").stat().st_mode & 0o044, "output should be readable by others"


def test_json_has_the_documented_keys():
    d = _analysis().to_dict()
    for key in (
        "duration",
        "fps",
        "width",
        "height",
        "cuts",
        "motion",
        "beats",
        "colour",
        "keyframes",
    ):
        assert key in d
    assert set(d["cuts"][0]) >= {"time", "kind", "strength"}
    assert set(d["motion"]) == {"times", "energy"}
    assert set(d["keyframes"][0]) == {"time", "scene"}  # images stay out of the JSON


def test_rendered_audio_round_trip():
    r = RenderedAudio(
        path="a.wav",
        midi="a.mid",
        soundfont="gm.sf2",
        sample_rate=44100,
        duration=3.5,
        midi_duration=2.0,
        peak_dbfs=-1.0,
    )
    assert RenderedAudio.from_json(r.to_json()) == r
