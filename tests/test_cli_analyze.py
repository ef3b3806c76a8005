"""The analyze command: files written, overwrite refused, one-line errors, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from composer.cli import main
from composer.video.synthetic import Shot, make_clip


@pytest.fixture(scope="module")
def clip(clip_dir):
    return make_clip(clip_dir / "cli_clip.mp4", [Shot(1.2), Shot(1.2)], fps=25)


def test_analyze_writes_json_and_timeline(clip, tmp_path, capsys):
    out, png, keys = tmp_path / "analysis.json", tmp_path / "timeline.png", tmp_path / "keys"
    assert (
        main(["analyze", str(clip), "-o", str(out), "--plot", str(png), "--keyframes", str(keys)])
        == 0
    )
    data = json.loads(out.read_text())
    assert data["cuts"][0]["kind"] == "cut"
    assert data["cuts"][0]["time"] == pytest.approx(1.2, abs=0.05)
    assert {"duration", "fps", "width", "height", "motion", "beats", "colour", "keyframes"} <= set(
        data
    )
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 800
    assert len(list(keys.glob("*.jpg"))) == len(data["keyframes"])
    assert "wrote" in capsys.readouterr().out
    # A second run must not overwrite without --force.
    before = out.read_bytes()
    assert main(["analyze", str(clip), "-o", str(out)]) == 1
    assert out.read_bytes() == before
    assert main(["analyze", str(clip), "-o", str(out), "--force"]) == 0
    # Keyframes already in the folder are refused before anything is written.
    other = tmp_path / "other.json"
    assert main(["analyze", str(clip), "-o", str(other), "--keyframes", str(keys)]) == 1
    assert not other.exists()


def test_bad_input_is_one_line_nonzero_and_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    out = tmp_path / "analysis.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "composer.cli",
            "analyze",
            str(bad),
            "-o",
            str(out),
            "--plot",
            str(tmp_path / "t.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0]
    assert list(tmp_path.iterdir()) == [bad]


def test_missing_file_error(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.mov"), "-o", str(tmp_path / "a.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.mov: no such file" in err
