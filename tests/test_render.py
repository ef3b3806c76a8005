"""Stage 7, render: MIDI to WAV with fluidsynth, soundfont lookup, and the doctor report."""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from composer.doctor import check, format_report
from composer.errors import ComposerError
from composer.render import find_soundfont, render_midi, soundfont_candidates
from composer.render import soundfont as soundfont_module
from composer.render.synth import load_fluidsynth
from composer.types import RenderedAudio

TIM = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"  # small: fast where the font is moot
SHARED_MIDI = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "midi"
SHARED_FILES = sorted(p for p in SHARED_MIDI.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
FULL = 32767
TARGET_PEAK = 10 ** (-1 / 20) * FULL  # -1 dBFS


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, int16 frames x channels); asserts 16-bit stereo."""
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        return w.getframerate(), data


def onset(data: np.ndarray, sr: int, after_s: float = 0.0, level: float = 0.1) -> float:
    """Time of the first frame after ``after_s`` louder than ``level`` x the peak."""
    env = np.abs(data.astype(np.int32)).max(axis=1)
    start = round(after_s * sr)
    loud = np.nonzero(env[start:] > level * env.max())[0]
    assert loud.size, "no onset found"
    return (start + loud[0]) / sr


def write_midi(path: Path, tracks: list[list[mido.Message | mido.MetaMessage]]) -> Path:
    """A type-1 file at 480 ticks per beat; message times are in ticks."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    for msgs in tracks:
        mid.tracks.append(mido.MidiTrack(msgs))
    mid.save(path)
    return path


def notes(channel: int, keys: list[int], beat: int = 480, program: list | None = None):
    """One note per beat on ``channel``, after optional program/bank messages."""
    msgs = list(program or [])
    for key in keys:
        msgs += [
            mido.Message("note_on", channel=channel, note=key, velocity=100, time=0),
            mido.Message("note_off", channel=channel, note=key, velocity=0, time=beat),
        ]
    return msgs


@pytest.fixture
def four_second_score(tmp_path: Path) -> Path:
    """Piano from 1.0 s to 4.0 s (the last note-off), nothing before 1.0 s."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for i, key in enumerate([60, 64, 67, 72, 67, 64]):
        piano.notes.append(
            pretty_midi.Note(velocity=90, pitch=key, start=1.0 + i * 0.5, end=1.0 + i * 0.5 + 0.5)
        )
    pm.instruments.append(piano)
    path = tmp_path / "score.mid"
    pm.write(str(path))
    return path


# --- rendering -------------------------------------------------------------------------------


def test_known_length_score(four_second_score: Path, tmp_path: Path):
    out = tmp_path / "score.wav"
    result = render_midi(four_second_score, out, soundfont=TIM)
    sr, data = read_wav(out)
    assert sr == 44100 == result.sample_rate
    length = mido.MidiFile(four_second_score).length
    assert length == pytest.approx(4.0, abs=0.01)  # pretty_midi rounds times to its ticks
    assert result.midi_duration == pytest.approx(4.0, abs=0.01)  # the last note-off
    assert length <= len(data) / sr <= length + 2.0
    assert result.duration == pytest.approx(len(data) / sr)
    peak = int(np.abs(data.astype(np.int32)).max())
    assert peak < FULL  # never clipped
    assert 20 * math.log10(peak / TARGET_PEAK) == pytest.approx(0.0, abs=0.5)
    assert result.peak_dbfs == pytest.approx(-1.0, abs=0.5)
    # Score time 0 is audio time 0: the silence before the first note is kept.
    assert not data[: round(0.99 * sr)].any()
    assert onset(data, sr) == pytest.approx(1.0, abs=0.02)
    assert result.soundfont == str(TIM)
    assert RenderedAudio.from_json(result.to_json()) == result


def test_tempo_change_moves_notes(tmp_path: Path):
    # 4 beats at 120 bpm (2 s), then 60 bpm: the note on beat 6 starts at 2 + 2 = 4 s
    # (at a constant 120 bpm it would start at 3 s).
    conductor = [
        mido.MetaMessage("set_tempo", tempo=500_000, time=0),
        mido.MetaMessage("set_tempo", tempo=1_000_000, time=4 * 480),
    ]
    piano = [
        mido.Message("note_on", channel=0, note=60, velocity=100, time=0),
        mido.Message("note_off", channel=0, note=60, velocity=0, time=240),
        mido.Message("note_on", channel=0, note=72, velocity=100, time=6 * 480 - 240),
        mido.Message("note_off", channel=0, note=72, velocity=0, time=480),
    ]
    midi = write_midi(tmp_path / "tempo.mid", [conductor, piano])
    result = render_midi(midi, tmp_path / "tempo.wav", soundfont=TIM)
    sr, data = read_wav(tmp_path / "tempo.wav")
    assert result.midi_duration == pytest.approx(5.0)
    assert onset(data, sr, after_s=3.5) == pytest.approx(4.0, abs=0.02)
    assert 5.0 <= result.duration <= 7.0


def _drums(tmp_path: Path, name: str, channel: int, program: list | None = None) -> np.ndarray:
    midi = write_midi(tmp_path / f"{name}.mid", [notes(channel, [36, 38, 42, 38], program=program)])
    render_midi(midi, tmp_path / f"{name}.wav", soundfont=TIM)
    return read_wav(tmp_path / f"{name}.wav")[1]


def test_channel_10_plays_drum_kits(tmp_path: Path):
    def kit(program: int, bank: int | None = None) -> list:
        msgs = (
            []
            if bank is None
            else [mido.Message("control_change", channel=9, control=0, value=bank)]
        )
        return msgs + [mido.Message("program_change", channel=9, program=program)]

    standard = _drums(tmp_path, "standard", 9)
    piano = _drums(tmp_path, "piano", 0)
    assert standard.any()
    assert not np.array_equal(standard, piano)  # channel 10 is not a melodic channel
    # A bank select (as GM files send) must not pull channel 10 off the percussion bank.
    assert np.array_equal(_drums(tmp_path, "bank0", 9, kit(0, bank=0)), standard)
    # Program 25 on channel 10 is the TR 808 kit, not program 25 (a guitar) of bank 0.
    tr808 = _drums(tmp_path, "tr808", 9, kit(25))
    guitar = _drums(tmp_path, "guitar", 0, [mido.Message("program_change", channel=0, program=25)])
    assert not np.array_equal(tr808, standard)
    assert not np.array_equal(tr808, guitar)
    # A kit the soundfont lacks (TimGM6mb has no kit 3) falls back to the standard kit.
    assert np.array_equal(_drums(tmp_path, "nokit", 9, kit(3)), standard)


def test_renders_do_not_leak_into_each_other(four_second_score: Path, tmp_path: Path):
    first = render_midi(four_second_score, tmp_path / "a1.wav", soundfont=TIM)
    second = render_midi(four_second_score, tmp_path / "a2.wav", soundfont=TIM)
    _drums(tmp_path, "between", 9)  # something else in between, with different presets
    third = render_midi(four_second_score, tmp_path / "a3.wav", soundfont=TIM)
    a1, a2, a3 = (read_wav(Path(r.path))[1] for r in (first, second, third))
    assert np.array_equal(a1, a2)
    assert np.array_equal(a1, a3)


def test_progress_is_reported_in_seconds_of_music(four_second_score: Path, tmp_path: Path):
    calls: list[tuple[str, float, float | None]] = []
    render_midi(
        four_second_score, tmp_path / "p.wav", soundfont=TIM, progress=lambda *a: calls.append(a)
    )
    assert {stage for stage, _, _ in calls} == {"render"}
    done = [d for _, d, _ in calls]
    assert done == sorted(done)
    assert calls[-1][1] == calls[-1][2] == pytest.approx(mido.MidiFile(four_second_score).length)


# --- bad input -------------------------------------------------------------------------------


def test_missing_midi_file(tmp_path: Path):
    with pytest.raises(ComposerError, match="no such file"):
        render_midi(tmp_path / "nope.mid", tmp_path / "out.wav", soundfont=TIM)
    assert list(tmp_path.iterdir()) == []


def test_not_a_midi_file(tmp_path: Path):
    fake = tmp_path / "fake.mid"
    fake.write_text("this is not a MIDI file\n")
    with pytest.raises(ComposerError, match="not a readable MIDI file") as err:
        render_midi(fake, tmp_path / "out.wav", soundfont=TIM)
    assert err.value.path == str(fake)
    assert list(tmp_path.iterdir()) == [fake]  # no output, no temporary file left


def test_score_without_notes(tmp_path: Path):
    midi = write_midi(tmp_path / "silent.mid", [[mido.MetaMessage("set_tempo", tempo=500_000)]])
    with pytest.raises(ComposerError, match="has no notes to render"):
        render_midi(midi, tmp_path / "out.wav", soundfont=TIM)
    assert not (tmp_path / "out.wav").exists()


def test_existing_output_is_kept_unless_overwrite(four_second_score: Path, tmp_path: Path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    with pytest.raises(ComposerError, match="already exists"):
        render_midi(four_second_score, out, soundfont=TIM)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(ComposerError, match="is not a WAV file"):  # not composer's to replace
        render_midi(four_second_score, out, soundfont=TIM, overwrite=True)
    assert out.read_bytes() == b"keep me"
    out.unlink()
    render_midi(four_second_score, out, soundfont=TIM)
    render_midi(four_second_score, out, soundfont=TIM, overwrite=True)
    assert read_wav(out)[1].any()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"RIFF0000WAVEfmt not a soundfont", "not a SoundFont"),
        (b"RIFF\x00\x10\x00\x00sfbkLIST truncated", "not a loadable SoundFont"),
    ],
)
def test_not_a_soundfont(four_second_score: Path, tmp_path: Path, content: bytes, problem: str):
    bogus = tmp_path / "bogus.sf2"
    bogus.write_bytes(content)
    with pytest.raises(ComposerError, match=problem) as err:
        render_midi(four_second_score, tmp_path / "out.wav", soundfont=bogus)
    assert err.value.path == str(bogus)
    assert not (tmp_path / "out.wav").exists()


def test_missing_libfluidsynth_says_how_to_fix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import now raises ImportError
    with pytest.raises(ComposerError, match="apt-get install --no-install-recommends fluidsynth"):
        load_fluidsynth()


# --- soundfont lookup ------------------------------------------------------------------------


def test_soundfont_candidates_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("COMPOSER_SOUNDFONT", str(TIM))
    sources = [c.source for c in soundfont_candidates(tmp_path / "mine.sf2")]
    assert sources[:2] == ["--soundfont", "$COMPOSER_SOUNDFONT"]
    assert sources[-2:] == ["Debian fluid-soundfont-gm", "pretty_midi's TimGM6mb"]
    assert soundfont_candidates()[-1] == soundfont_module.SoundfontCandidate(
        "pretty_midi's TimGM6mb", TIM, True
    )


def test_named_soundfont_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("COMPOSER_SOUNDFONT", raising=False)
    assert find_soundfont(TIM) == TIM
    with pytest.raises(ComposerError, match="soundfont not found") as err:
        find_soundfont(tmp_path / "missing.sf2")
    assert err.value.path == str(tmp_path / "missing.sf2")
    monkeypatch.setenv("COMPOSER_SOUNDFONT", str(tmp_path / "env.sf2"))
    with pytest.raises(ComposerError, match=r"named by \$COMPOSER_SOUNDFONT"):
        find_soundfont()
    monkeypatch.setenv("COMPOSER_SOUNDFONT", str(TIM))
    assert find_soundfont() == TIM


def test_user_folder_then_shipped_then_system_then_pretty_midi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.delenv("COMPOSER_SOUNDFONT", raising=False)
    mine, shipped = tmp_path / "mine", tmp_path / "shipped"
    mine.mkdir()
    shipped.mkdir()
    monkeypatch.setattr(soundfont_module, "user_soundfonts", lambda: mine)
    monkeypatch.setattr(soundfont_module, "SOUNDFONTS", shipped)
    monkeypatch.setattr(soundfont_module, "DEBIAN_SOUNDFONT", tmp_path / "no-debian.sf2")
    assert find_soundfont() == TIM  # only pretty_midi's is left
    (shipped / "b.sf3").write_bytes(b"")
    (shipped / "a.sf2").write_bytes(b"")
    (shipped / "notes.txt").write_text("")
    assert find_soundfont() == shipped / "a.sf2"
    (mine / "z.sf2").write_bytes(b"")
    assert find_soundfont() == mine / "z.sf2"
    monkeypatch.setattr(soundfont_module, "user_soundfonts", lambda: tmp_path / "none")
    monkeypatch.setattr(soundfont_module, "SOUNDFONTS", tmp_path / "none")
    monkeypatch.setattr(soundfont_module, "_pretty_midi_soundfont", lambda: None)
    with pytest.raises(ComposerError, match="apt-get install fluid-soundfont-gm"):
        find_soundfont()


def test_doctor_report():
    checks = check(soundfont=TIM)
    assert [c.name for c in checks] == ["libfluidsynth", "soundfont", "ffmpeg", "PyAV", "OpenCV"]
    assert all(c.ok for c in checks), format_report(checks)
    assert str(TIM) in checks[1].detail
    report = format_report(checks)
    assert report.splitlines()[-1] == "all checks passed"
    bad = format_report(check(soundfont="/no/such.sf2"))
    assert "FAIL  soundfont" in bad and "fix:" in bad


# --- every MIDI file under shared/media/midi -------------------------------------------------


def _render_and_measure(midi: str, wav: Path) -> dict:
    """Render one shared file and measure the WAV (then delete it: some are 400 MB)."""
    length = mido.MidiFile(midi, clip=True).length
    try:
        result = render_midi(midi, wav, soundfont=TIM)
    except ComposerError as e:
        return {"error": str(e), "midi_length": length}
    try:
        with wave.open(str(wav)) as w:
            stats = {
                "channels": w.getnchannels(),
                "rate": w.getframerate(),
                "width": w.getsampwidth(),
                "frames": w.getnframes(),
            }
            peak = 0
            while chunk := w.readframes(1 << 20):
                pcm = np.frombuffer(chunk, "<i2")
                peak = max(peak, int(pcm.max()), -int(pcm.min()))
    finally:
        wav.unlink()
    return {**stats, "peak": peak, "midi_length": length, "result": result.to_dict()}


@pytest.fixture(scope="module")
def shared_renders(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, dict]:
    """All shared files rendered in parallel (hours of music: one core would take minutes)."""
    out = tmp_path_factory.mktemp("shared")
    ordered = sorted(SHARED_FILES, key=lambda p: p.stat().st_size, reverse=True)  # long first
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(len(ordered), cores or 1, 8)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            p: pool.submit(_render_and_measure, str(p), out / f"{i}.wav")
            for i, p in enumerate(ordered)
        }
        return {p: f.result() for p, f in futures.items()}


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_FILES, reason=f"no shared MIDI files under {SHARED_MIDI}")
@pytest.mark.parametrize(
    "midi", SHARED_FILES, ids=[str(p.relative_to(SHARED_MIDI)) for p in SHARED_FILES]
)
def test_shared_midi_renders(midi: Path, shared_renders: dict[Path, dict]):
    got = shared_renders[midi]
    if midi.name == "empty.mid":  # MidiTok's score with no notes at all
        assert "has no notes to render" in got["error"]
        return
    # Everything else renders, including MidiTok's file with an out-of-range control value.
    assert "error" not in got, got.get("error")
    assert (got["channels"], got["rate"], got["width"]) == (2, 44100, 2)
    assert 0 < got["peak"] < FULL
    assert 20 * math.log10(got["peak"] / TARGET_PEAK) == pytest.approx(0.0, abs=0.5)
    duration = got["frames"] / got["rate"]
    assert got["midi_length"] - 1 / got["rate"] <= duration <= got["midi_length"] + 2.0
    assert got["result"]["duration"] == pytest.approx(duration)
