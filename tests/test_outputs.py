"""Nothing a user has is lost: --force replaces only composer's own outputs, temporary names are
unique to a run and removed on failure, SIGTERM and SIGHUP clean up as Ctrl-C does, and the
outputs of one command land together or not at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ffmpeg

import composer.video
from composer.cli import main
from composer.errors import ComposerError
from composer.outputs import MARKER, Outputs, atomic_path
from composer.pipeline import compose
from composer.video.synthetic import Shot, make_clip

PROMPT = ["--prompt", "a calm folk tune", "--duration", "4"]


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return str(tiny_checkpoint)


def compose_args(model: str, out: Path | str, *more: str) -> list[str]:
    return ["compose", *PROMPT, "--model", model, "-o", str(out), *more]


def leftovers(folder: Path) -> list[str]:
    """Temporary names a run left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or p.name.endswith(".old"))


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and ".part" not in err[0]
    return err[0]


# --- compose: OUTDIR ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["..", "sub/..", ".", "home"])
def test_force_never_takes_the_working_folder_its_parents_or_home(
    model, tmp_path, monkeypatch, capsys, where
):
    home = tmp_path / "home"
    work = home / "work"
    (work / "sub").mkdir(parents=True)
    (work / "precious.txt").write_text("mine")
    (home / "thesis.tex").write_text("mine too")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    target = str(home) if where == "home" else where
    assert main(compose_args(model, target, "--force")) == 1
    assert "name a new folder" in error_line(capsys)
    assert (work / "precious.txt").read_text() == "mine"
    assert (home / "thesis.tex").read_text() == "mine too"
    assert leftovers(work) == [] and leftovers(home) == []


def test_force_refuses_a_folder_with_the_users_files(model, tmp_path, capsys):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    assert main(compose_args(model, out)) == 1
    assert "--force" in error_line(capsys)
    assert main(compose_args(model, out, "--force")) == 1
    assert "not written by composer" in error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    # composer's own folder is replaced, and one it wrote with a file added is refused by name
    own = tmp_path / "own"
    assert main(compose_args(model, own)) == 0
    first = (own / "plan.json").read_text()
    assert main(compose_args(model, own, "--force", "--seed", "3")) == 0
    assert (own / "plan.json").read_text() != first and (own / MARKER).exists()
    (own / "notes.txt").write_text("my notes")
    assert main(compose_args(model, own, "--force")) == 1
    assert "notes.txt" in error_line(capsys)
    assert (own / "notes.txt").read_text() == "my notes"
    assert leftovers(tmp_path) == []


def test_a_users_part_folder_is_left_alone(model, tmp_path):
    mine = tmp_path / ".out.part"
    mine.mkdir()
    (mine / "draft.txt").write_text("mine")
    assert main(compose_args(model, tmp_path / "out")) == 0
    assert (mine / "draft.txt").read_text() == "mine"
    assert (tmp_path / "out" / "score.mid").exists()


@pytest.mark.parametrize("kind", ["file", "symlink", "readonly"])
def test_unusable_outdir_is_refused_before_any_work(model, tmp_path, monkeypatch, capsys, kind):
    """A file, a link or a folder that cannot be written is refused before the video is
    analysed, in one line, and nothing is left."""
    clip = make_clip(tmp_path / "clip.mp4", [Shot(1.0), Shot(1.0)], size=(64, 36))
    analysed = []
    monkeypatch.setattr(composer.video, "analyze", lambda *a, **k: analysed.append(a))
    if kind == "file":
        out = tmp_path / "afile"
        out.write_text("mine")
    elif kind == "symlink":
        (tmp_path / "real").mkdir()
        out = tmp_path / "link"
        out.symlink_to(tmp_path / "real")
    else:
        out = tmp_path / "ro" / "out"
        out.parent.mkdir()

        def unwritable(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("composer.outputs.tempfile.mkdtemp", unwritable)
    assert main(["compose", str(clip), "--model", model, "-o", str(out), "--force"]) == 1
    line = error_line(capsys)
    assert {"file": "is a file", "symlink": "symbolic link", "readonly": "cannot write"}[
        kind
    ] in line
    assert analysed == []
    if kind == "file":
        assert out.read_text() == "mine"
    if kind == "symlink":
        assert out.is_symlink() and list((tmp_path / "real").iterdir()) == []
    assert leftovers(tmp_path) == [] and not (tmp_path / "ro" / "out").exists()


def test_two_composes_into_one_folder_keep_each_others_work(model, tmp_path):
    """A second run into the same OUTDIR no longer deletes the first's work in progress."""
    out = tmp_path / "same"
    paused, resume = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def slow_progress(stage, done, total):
        if stage == "generate" and not paused.is_set():
            paused.set()
            resume.wait(60)

    def first():
        try:
            results["first"] = compose(None, "a folk tune", out, duration=4, model=model,
                                       force=True, progress=slow_progress)  # fmt: skip
        except BaseException as e:  # reported below
            results["first"] = e

    thread = threading.Thread(target=first)
    thread.start()
    assert paused.wait(120)
    second = compose(None, "a march", out, duration=4, model=model, force=True, seed=1)
    assert (second.outdir / "score.mid").exists()
    resume.set()
    thread.join(120)
    assert not isinstance(results["first"], BaseException), results["first"]
    record = json.loads((out / "plan.json").read_text())
    assert record["prompt"] == "a folk tune"  # the first finished last, and replaced the second
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, "plan.json", "score.mid", "score.musicxml", "score.wav", "timeline.png"]
    )
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "100000"])
def test_durations_composer_cannot_write_are_one_line(model, tmp_path, capsys, value):
    args = ["compose", "--prompt", "a tune", "--duration", value, "--model", model,
            "-o", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 1
    assert f"cannot compose for {float(value):g} s" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_prompts_with_fractions_compose_and_say_what_was_ignored(model, tmp_path):
    out = tmp_path / "diner"
    prompt = "an all-night 24/7 diner in 11/16, or in 3/0, at 900 bpm with a minor twist, 70s disco"
    assert main(["compose", "--prompt", prompt, "--duration", "4", "--model", model,
                 "-o", str(out)]) == 0  # fmt: skip
    request = json.loads((out / "plan.json").read_text())["request"]
    ignored = " ".join(i["words"] for i in request["ignored"])
    assert "11/16" in ignored and "3/0" in ignored and "900 bpm" in ignored
    assert request["key"] is None and request["meter"] is None and request["era"] == "1970s"


# --- files: render, analyze, generate ------------------------------------------------------------


def tiny_midi(path: Path, seconds: float = 2.0) -> Path:
    import symusic

    score = symusic.Score(480)
    track = symusic.Track("piano", program=0)
    quarters = max(1, round(seconds * 2))  # at 120 bpm
    for i in range(quarters):
        track.notes.append(symusic.Note(i * 480, 480, 60 + i % 12, 90))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


def test_force_replaces_a_file_only_of_the_kind_written(tmp_path, capsys):
    midi = tiny_midi(tmp_path / "s.mid")
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio: my notes")
    assert main(["render", str(midi), "-o", str(notes), "--force"]) == 1
    assert "is not a WAV file" in error_line(capsys)
    assert notes.read_text() == "not audio: my notes"
    wav = tmp_path / "s.wav"
    assert main(["render", str(midi)]) == 0
    assert main(["render", str(midi), "--force"]) == 0
    assert wav.read_bytes()[:4] == b"RIFF"
    assert leftovers(tmp_path) == []


def test_failed_render_video_leaves_no_wav(tmp_path, capsys):
    midi = tiny_midi(tmp_path / "s.mid")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    args = ["render", str(midi), "--video", str(broken), "--out-video", str(tmp_path / "v.mp4")]
    assert main(args) == 1
    assert "broken.mp4" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4", "s.mid"]


def test_failed_analyze_plot_leaves_no_analysis(tmp_path, monkeypatch, capsys):
    clip = make_clip(tmp_path / "clip.mp4", [Shot(1.0)], size=(64, 36))

    def broken_plot(*args, **kwargs):
        raise ComposerError(args[1], "could not draw")

    monkeypatch.setattr("composer.video.timeline.plot_timeline", broken_plot)
    out, png = tmp_path / "a.json", tmp_path / "t.png"
    assert main(["analyze", str(clip), "-o", str(out), "--plot", str(png)]) == 1
    assert "could not draw" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_generate_refuses_its_output_before_loading_the_model(tmp_path, capsys):
    taken = tmp_path / "taken.mid"
    taken.write_text("mine")
    args = ["generate", "--model", str(tmp_path / "no-model"), "-o", str(taken)]
    assert main(args) == 1
    assert "already exists" in error_line(capsys)  # not "no such checkpoint folder"
    assert taken.read_text() == "mine"


def test_outputs_of_one_command_land_together_or_not_at_all(tmp_path):
    with Outputs() as out:
        a = out.file(tmp_path / "a.json")
        b = out.file(tmp_path / "deep" / "b.png")
        a.write_text("{}")
        b.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert (tmp_path / "a.json").read_text() == "{}" and (tmp_path / "deep" / "b.png").exists()
    with pytest.raises(RuntimeError), Outputs(force=True) as out:
        out.file(tmp_path / "a.json").write_text('{"new": 1}')
        out.file(tmp_path / "new" / "c.png")
        raise RuntimeError("the work failed")
    assert (tmp_path / "a.json").read_text() == "{}"
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []
    with pytest.raises(ComposerError, match="symbolic link"):
        (tmp_path / "link.json").symlink_to(tmp_path / "a.json")
        with atomic_path(tmp_path / "link.json") as tmp:
            tmp.write_text("{}")


# --- signals -----------------------------------------------------------------------------------


def ffmpeg_children(pid: int) -> list[int]:
    """PIDs of the ffmpeg processes reading an input whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"ffmpeg" in cmdline and b"-i\x00" in cmdline:
            out.append(int(stat.parent.name))
    return out


CLI = [sys.executable, "-c", "import sys; from composer.cli import main; sys.exit(main())"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find children")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_ffmpeg_and_leave_nothing(model, clip_dir, tmp_path, signum):
    """compose re-encodes a VP8 picture in a child ffmpeg from the start; a signal then stops
    the child first and removes the temporary folder, as Ctrl-C does."""
    webm = clip_dir / "long-vp8.webm"
    if not webm.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=40",
               "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
               str(webm))  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([*CLI, "compose", str(webm), "--model", model, "-o", "out"],
                            cwd=work, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not ffmpeg_children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    kids = ffmpeg_children(proc.pid)
    assert kids, "compose finished before its ffmpeg child could be seen"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert [k for k in kids if Path(f"/proc/{k}").exists()] == []
    assert list(work.iterdir()) == []


def test_sigterm_during_render_leaves_no_part_file(tmp_path):
    midi = tiny_midi(tmp_path / "long.mid", seconds=3000)
    proc = subprocess.Popen([*CLI, "render", str(midi)], cwd=tmp_path, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert leftovers(tmp_path), "render finished before its temporary file could be seen"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mid"]
