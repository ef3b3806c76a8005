"""The README is a user's guide that works: its Python example runs as written, it leads with
the two commands, and no file of the project narrates the history of its making."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from composer.video.synthetic import Shot, make_clip

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_python_example_runs(tmp_path):
    block = README.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    make_clip(tmp_path / "clip.mp4", [Shot(2.0), Shot(2.0)], size=(160, 90), audio=True)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("score.mid", "score.wav", "scored.mp4", "scored/score.mid", "scored/plan.json"):
        assert (tmp_path / name).exists(), name


def test_the_readme_leads_with_the_two_commands_and_stays_short():
    first = README.split("```", 2)[1]
    assert "make demo" in first and "make test" in first
    assert README.count("\n") <= 250


def test_no_file_narrates_the_history_of_the_work():
    found = subprocess.run(
        ["git", "grep", "-n", "-I", "-i", "-E", r"\b(session|trial) [0-9]+\b", "--", ".",
         ":!tests/test_readme.py"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert found == ""
