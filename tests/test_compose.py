"""composer compose end to end with a tiny decoder: outputs, plan.json, cuts on the grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import symusic

from composer.cli import main
from composer.pipeline import ComposeRecord
from composer.video.synthetic import Shot, cut_times, make_clip

# Whole frames at 25 fps, so the cuts are exactly where cut_times says.
SHOTS = [Shot(2.2), Shot(3.12), Shot(1.72), Shot(4.6), Shot(2.4)]


@pytest.fixture(scope="module")
def model_dir(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def clip(clip_dir):
    return make_clip(clip_dir / "compose-cuts.mp4", SHOTS, size=(320, 180))


def marked_times(midi: symusic.Score) -> list[float]:
    """Seconds of the score's cut markers (downbeats or hit accents)."""
    sec = midi.to("second")
    return [m.time for m in sec.markers if m.text.startswith("cut")]


def test_compose_video_lands_cuts_and_lasts_the_video(model_dir, clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compose", str(clip), "--model", str(model_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("plan.json", "score.mid", "score.musicxml", "score.wav", "video.mp4",
                 "timeline.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0 and name in printed
    record = ComposeRecord.load(out / "plan.json")
    assert record.brief.describer == "signal" and record.plan.style.source == "video"
    midi = symusic.Score(str(out / "score.mid"))
    marks = marked_times(midi)
    errors = [min(abs(m - c) for m in marks) * 1000 for c in cut_times(SHOTS)]
    assert max(errors) <= 50 and np.median(errors) <= 20, errors
    end = midi.to("second").end()
    assert abs(end - sum(s.duration for s in SHOTS)) <= 0.25
    assert [t.name.split(" (")[0] for t in midi.tracks][0] == "melody"
    assert midi.tempos and midi.time_signatures and midi.key_signatures


def test_text_request_meets_explicit_values(model_dir, tmp_path):
    out = tmp_path / "text"
    prompt = "a waltz in Eb major at 84 bpm in 3/4 for flute and cello, 12 seconds"
    assert main(["compose", "--prompt", prompt, "--model", str(model_dir), "-o", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())["plan"]
    assert plan["key"]["value"] == [3, "major"] and plan["key"]["source"] == "prompt"
    midi = symusic.Score(str(out / "score.mid"))
    assert [(t.numerator, t.denominator) for t in midi.time_signatures] == [(3, 4)]
    assert midi.tempos[0].qpm == pytest.approx(84, abs=0.01)
    assert (midi.key_signatures[0].key, midi.key_signatures[0].tonality) == (-3, 0)
    assert {t.program for t in midi.tracks if len(t.notes)} == {73, 42}
    assert abs(midi.to("second").end() - 12.0) <= 0.25


def test_plan_records_references_from_the_shipped_library(model_dir, tmp_path):
    out = tmp_path / "refs"
    prompt = "a lively fiddle jig in D major, 6/8, 10 seconds"
    assert main(["compose", "--prompt", prompt, "--model", str(model_dir), "-o", str(out)]) == 0
    refs = json.loads((out / "plan.json").read_text())["references"]
    assert len(refs["picks"]) == 3
    best = refs["picks"][0]
    assert (best["style"], best["key"], best["meter"]) == ("fiddle", "D major", "6/8")
    assert "text" in best["parts"] and "attributes" in best["parts"]
    assert refs["priming"].startswith("primed with bars")  # a 6/8 pick gives the excerpt
    # Without a library the music is still written, and plan.json says why nothing primed.
    out2 = tmp_path / "nolib"
    args = ["compose", "--prompt", prompt, "--model", str(model_dir), "-o", str(out2)]
    assert main([*args, "--library", str(tmp_path / "missing")]) == 0
    refs = json.loads((out2 / "plan.json").read_text())["references"]
    assert refs["picks"] == [] and refs["priming"].startswith("no library")


def test_outdir_is_never_clobbered(model_dir, tmp_path, capsys):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    args = ["compose", "--prompt", "calm piano", "--duration", "6", "--model", str(model_dir),
            "-o", str(out)]  # fmt: skip
    assert main(args) == 1 and "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 1  # not composer's folder: tests/test_outputs.py
    assert (out / "mine.txt").read_text() == "mine"
    assert main(["compose", "--describer", "magic", str(tmp_path / "none.mp4"),
                 "-o", str(tmp_path / "x")]) == 1  # fmt: skip


def test_short_video_nonsense_prompt_and_contradictions(model_dir, clip_dir, tmp_path):
    short = make_clip(clip_dir / "two-seconds.mp4", [Shot(1.2), Shot(0.8)], size=(160, 90))
    out = tmp_path / "short"
    assert main(["compose", str(short), "--prompt", "%%% ???", "--model", str(model_dir),
                 "-o", str(out)]) == 0  # fmt: skip
    record = json.loads((out / "plan.json").read_text())
    assert "nothing in the request was understood" in record["request"]["notes"][0]
    assert record["plan"]["style"]["source"] == "video"
    midi = symusic.Score(str(out / "score.mid")).to("second")
    assert abs(midi.end() - 2.0) <= 0.25
    out = tmp_path / "contra"
    assert main(["compose", "--prompt", "fast, at 40 bpm", "--duration", "8", "--model",
                 str(model_dir), "-o", str(out)]) == 0  # fmt: skip
    tempo = json.loads((out / "plan.json").read_text())["plan"]["tempo"]
    assert tempo["value"] == 40 and tempo["source"] == "prompt"
    assert "the explicit number wins" in tempo["why"]
