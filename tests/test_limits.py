"""Work is bounded (limits in one place, overridable) and every refusal is one line in a user's
words: the file, and what is wrong with it."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared
from fuzz import vlq

from composer.cli import main
from composer.config import Limits, limits


def midi_file(path: Path, events: bytes, division: int = 1, fmt: int = 0) -> Path:
    track = events + b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, fmt, 1, division)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + track)
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and ".part" not in err[0]
    return err[0]


def test_a_tiny_midi_asking_for_years_of_audio_is_refused_before_rendering(tmp_path, capsys):
    # The slowest tempo (16.7 s a quarter), one note, and a delta of 2^28 ticks: 44 bytes that
    # would render 143 years of audio.
    huge = midi_file(tmp_path / "huge.mid", b"\x00\xff\x51\x03\xff\xff\xff\x00\x90\x3c\x40"
                     + vlq(0x0FFFFFFF) + b"\x80\x3c\x40")  # fmt: skip
    assert huge.stat().st_size < 52
    assert main(["render", str(huge)]) == 1
    line = one_line(capsys)
    assert "huge.mid" in line and "years" in line and "COMPOSER_MAX_RENDER_S" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.mid"]


def test_limits_are_overridable_and_checked(tmp_path, monkeypatch, capsys):
    two_seconds = midi_file(tmp_path / "two.mid", b"\x00\x90\x3c\x40" + vlq(4) + b"\x80\x3c\x40")
    monkeypatch.setenv("COMPOSER_MAX_RENDER_S", "1")
    assert limits().max_render_s == 1.0 and Limits().max_render_s == 7200.0
    assert main(["render", str(two_seconds)]) == 1
    assert "the longest composer renders is 1 s" in one_line(capsys)
    monkeypatch.setenv("COMPOSER_MAX_RENDER_S", "lots")
    assert main(["render", str(two_seconds)]) == 1
    assert "COMPOSER_MAX_RENDER_S='lots' is not a number" in one_line(capsys)
    monkeypatch.delenv("COMPOSER_MAX_RENDER_S")
    monkeypatch.setenv("COMPOSER_MAX_PROMPT_CHARS", "20")
    args = ["compose", "--prompt", "a slow chorale in D minor", "-o", str(tmp_path / "o")]
    assert main(args) == 1
    assert "25 characters long; the longest composer reads is 20" in one_line(capsys)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--bars", "100000"], "longer than the 30 min composer writes"),
        (["--tempo", "0"], "outside the 20-300 bpm"),
        (["--tempo", "nan"], "outside the 20-300 bpm"),
        (["--bars", "0"], "at least one bar"),
        (["-n", "0"], "candidates must be 1 to 64"),
        (["--temperature", "0"], "temperature must be above 0"),
        (["--top-p", "0"], "top-p must be above 0"),
    ],
)
def test_generate_refuses_requests_it_cannot_serve(
    tiny_checkpoint, tmp_path, capsys, args, problem
):
    out = tmp_path / "g.mid"
    assert main(["generate", "--model", str(tiny_checkpoint), "-o", str(out), *args]) == 1
    assert problem in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_damaged_midi_is_named_with_its_damage(tmp_path, capsys):
    real = shared("midi", "music21", "testPrimitive", "test03.mid").read_bytes()
    cases = {
        "cut.mid": (real[: len(real) // 2], "truncated or damaged"),
        "text.mid": (b"these are my notes, not music", "no MIDI header"),
        "zero.mid": (real[:12] + b"\x00\x00" + real[14:], "0 ticks per beat"),
    }
    for name, (data, problem) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert main(["render", str(tmp_path / name)]) == 1
        line = one_line(capsys)
        assert name in line and problem in line and "()" not in line


def test_a_damaged_reference_is_named_without_library_internals(tiny_checkpoint, tmp_path, capsys):
    real = shared("midi", "music21", "testPrimitive", "test03.mid").read_bytes()
    (tmp_path / "cut.mid").write_bytes(real[:100])
    midi_file(tmp_path / "loud.mid", b"\x00\x90\x3c\xff" + vlq(4) + b"\x80\x3c\x40")  # 255
    for name in ("cut.mid", "loud.mid"):
        args = ["generate", "--model", str(tiny_checkpoint), "--bars", "2",
                "--reference", str(tmp_path / name), "-o", str(tmp_path / "o.mid")]  # fmt: skip
        assert main(args) == 1
        line = one_line(capsys)
        assert name in line and "MiniMidi" not in line and "Invaild" not in line
        assert "not usable as a reference" in line
    assert not (tmp_path / "o.mid").exists()


def test_importing_composer_makes_no_folder(tmp_path):
    """A read-only install works: no module of composer makes a folder when it is imported
    (music21's scratch folder is made in the user cache when first needed)."""
    code = """
import os, pathlib, pkgutil, importlib, sys
made = []

def record(name):
    caller = sys._getframe(2).f_globals.get("__name__", "")
    if caller.startswith("composer"):
        made.append(f"{caller}: {name}")

pathlib.Path.mkdir = lambda self, *a, **k: record(self)
os.makedirs = lambda name, *a, **k: record(name)
import composer
for m in pkgutil.walk_packages(composer.__path__, "composer."):
    if "vllm" not in m.name and not m.name.endswith("__main__"):
        importlib.import_module(m.name)
print(made)
sys.exit(1 if made else 0)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
