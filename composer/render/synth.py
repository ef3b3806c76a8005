"""MIDI to a stereo WAV with an in-process fluidsynth (libfluidsynth through pyfluidsynth).

Each render gets a new synth. A reused one cannot be returned to a clean state: libfluidsynth 2.3
keeps the chorus and reverb modulators running through ``fluid_synth_system_reset``, and a
recycled voice inherits its filter's Q interpolation from the note it last played (fixed upstream
in 2025, FluidSynth PR #1476), so the same score rendered differently after different scores.
A new synth costs a few milliseconds plus loading the soundfont (about 0.15 s for the 141 MB
FluidR3_GM from the page cache). fluidsynth renders float samples here, so nothing clips or is
quantised inside it; the peak is normalised once the whole score is rendered.
"""

from __future__ import annotations

import ctypes
import logging
import math
import tempfile
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO

import mido
import numpy as np

from composer.config import RenderConfig, duration_words, limits
from composer.errors import ComposerError
from composer.music.midi import read_messages
from composer.outputs import atomic_path
from composer.process import Cancelled
from composer.progress import ProgressFn, log, no_progress
from composer.render.soundfont import find_soundfont
from composer.types import RenderedAudio

FLUIDSYNTH_FIX = "sudo apt-get install --no-install-recommends fluidsynth"
DRUM_CHANNEL = 9  # MIDI channel 10
DRUM_BANK = 128  # where SoundFonts keep percussion kits
# Voices, not notes: a stereo piano note with the pedal down holds two or more. fluidsynth's
# default (256) steals voices in dense pedalled piano; unused voices cost nothing.
_POLYPHONY = 1024
_CHUNK = 1 << 16  # frames per spill to the temporary file and per pass over it
_TAIL_BLOCK_S = 0.05
_SILENCE_DB = -80.0  # the tail is silent below this, relative to the score's peak
_FADE_S = 0.25  # fade applied when a still-sounding tail is cut at max_tail_s
_FULL_SCALE = 32767


def _declare(lib: ctypes.CDLL, name: str, restype: type | None, *argtypes: type) -> Callable:
    func = getattr(lib, name)
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


# fluidsynth log levels (PANIC, ERR, WARN, INFO, DBG) as Python logging levels. Its errors come
# with a ComposerError that says the same in one line, so they are warnings here.
_FLUID_LOG_LEVELS = [logging.ERROR, logging.WARNING, logging.WARNING, logging.DEBUG, logging.DEBUG]
_LogFunction = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


# Each kind of message is logged once per render: a damaged file can make fluidsynth complain
# for every one of thousands of notes ("Failed to allocate a synthesis process"), which costs
# more than the rendering. The kind is the text before its details in parentheses.
_LOGGED: set[str] = set()
# An exception raised while fluidsynth's log callback ran (a signal's: SIGTERM, SIGALRM) would
# be swallowed by ctypes; it is kept here and raised by the render loop instead.
_DEFERRED: list[BaseException] = []


@_LogFunction
def _fluid_log(level: int, message: bytes, _data: int) -> None:
    try:
        text = message.decode(errors="replace")
        kind = text.split(" (", 1)[0]
        if kind not in _LOGGED:
            _LOGGED.add(kind)
            log.log(
                _FLUID_LOG_LEVELS[level] if 0 <= level < len(_FLUID_LOG_LEVELS) else logging.DEBUG,
                "fluidsynth: %s",
                text,
            )
    except BaseException as e:
        _DEFERRED.append(e)


def _raise_deferred() -> None:
    if _DEFERRED:
        raise _DEFERRED.pop()


def load_fluidsynth() -> ModuleType:
    """Import pyfluidsynth, turning a missing libfluidsynth into a ComposerError with the fix.

    libfluidsynth's own messages are routed to the ``composer`` logger instead of stderr.
    """
    try:
        import fluidsynth
    except (ImportError, OSError) as e:
        raise ComposerError(None, f"libfluidsynth is not usable ({e}): {FLUIDSYNTH_FIX}") from None
    set_log = _declare(
        fluidsynth._fl,
        "fluid_set_log_function",
        ctypes.c_void_p,
        ctypes.c_int,
        _LogFunction,
        ctypes.c_void_p,
    )
    for level in range(len(_FLUID_LOG_LEVELS)):
        set_log(level, _fluid_log, None)
    return fluidsynth


def fluidsynth_version() -> str:
    """libfluidsynth's version, e.g. "2.3.1"."""
    lib = load_fluidsynth()._fl
    major, minor, micro = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    lib.fluid_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(micro))
    return f"{major.value}.{minor.value}.{micro.value}"


def _check_soundfont_header(path: Path) -> None:
    # fluidsynth tries every loader it has on a file it cannot read, printing each failure;
    # a RIFF header with the SoundFont (or DLS) form type is checked first.
    with open(path, "rb") as f:
        header = f.read(12)
    if header[:4] != b"RIFF" or header[8:12] not in (b"sfbk", b"DLS "):
        raise ComposerError(path, "not a SoundFont (no SF2/SF3 header)")


class _Synth:
    """One fluidsynth synth with one soundfont, for one render."""

    def __init__(self, sample_rate: int, gain: float, soundfont: Path):
        fs = load_fluidsynth()
        lib = fs._fl
        # pyfluidsynth wraps only the int16 writer and lacks the aftertouch calls: declare them
        # on its ctypes handle to the library.
        vp, i = ctypes.c_void_p, ctypes.c_int
        self._write_float = _declare(lib, "fluid_synth_write_float", i, vp, i, vp, i, i, vp, i, i)
        self._channel_pressure = _declare(lib, "fluid_synth_channel_pressure", i, vp, i, i)
        self._key_pressure = _declare(lib, "fluid_synth_key_pressure", i, vp, i, i, i)
        _check_soundfont_header(soundfont)
        self.fs = fs.Synth(
            gain=gain, samplerate=float(sample_rate), **{"synth.polyphony": _POLYPHONY}
        )
        self.sfid = self.fs.sfload(str(soundfont))
        if self.sfid < 0:
            self.close()
            raise ComposerError(soundfont, "not a loadable SoundFont (fluidsynth rejected it)")
        self.bank = [0] * 16
        for channel in range(16):
            self.program(channel, 0)

    def close(self) -> None:
        self.fs.delete()

    def render_into(self, buf: np.ndarray, offset: int, frames: int) -> None:
        """Render ``frames`` stereo frames into ``buf`` (interleaved float32) from ``offset``."""
        ptr = buf.ctypes.data + offset * 2 * buf.itemsize
        self._write_float(self.fs.synth, frames, ptr, 0, 2, ptr, 1, 2)

    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` stereo frames, interleaved float32."""
        buf = np.empty(2 * frames, dtype=np.float32)
        self.render_into(buf, 0, frames)
        return buf

    def program(self, channel: int, program: int) -> None:
        """Select a preset, falling back to one the soundfont has.

        Channel 10 always takes its kit from the percussion bank, whatever bank select the file
        sent; other channels use the last bank select (MSB, as in GS), then bank 0.
        """
        if channel == DRUM_CHANNEL:
            choices = [(DRUM_BANK, program), (DRUM_BANK, 0)]
        else:
            choices = [(self.bank[channel], program), (0, program), (0, 0)]
        for bank, prog in choices:
            if self.fs.sfpreset_name(self.sfid, bank, prog) is not None:
                self.fs.program_select(channel, self.sfid, bank, prog)
                return
        log.warning(
            "soundfont has no preset for bank %d program %d (channel %d); ignored",
            choices[0][0],
            program,
            channel + 1,
        )

    def send(self, msg: mido.Message) -> None:
        """Play one channel message; meta and system messages are not sent."""
        fs = self.fs
        if msg.type == "note_on":
            fs.noteon(msg.channel, msg.note, msg.velocity)
        elif msg.type == "note_off":
            fs.noteoff(msg.channel, msg.note)
        elif msg.type == "program_change":
            self.program(msg.channel, msg.program)
        elif msg.type == "control_change":
            if msg.control == 0:  # bank select MSB: takes effect at the next program change
                self.bank[msg.channel] = msg.value
            elif msg.control != 32:  # bank select LSB: unused in GS bank selection
                fs.cc(msg.channel, msg.control, msg.value)
        elif msg.type == "pitchwheel":
            fs.pitch_bend(msg.channel, msg.pitch)
        elif msg.type == "aftertouch":
            self._channel_pressure(fs.synth, msg.channel, msg.value)
        elif msg.type == "polytouch":
            self._key_pressure(fs.synth, msg.channel, msg.note, msg.value)
        # System exclusive is not sent: a GM/GS reset in it would bypass program() above.

    def release_all(self) -> None:
        """Lift the pedals and release every note, as a sequencer does when it stops."""
        for channel in range(16):
            self.fs.cc(channel, 64, 0)  # sustain
            self.fs.cc(channel, 66, 0)  # sostenuto
            self.fs.all_notes_off(channel)

    def voices(self) -> int:
        return self.fs.get_active_voice_count()


class _Spill:
    """Rendered float frames, buffered, then spilled to an anonymous temporary file.

    Rendering straight into one reusable buffer keeps the cost of an event to a C call: scores
    have tens of thousands of events, most of them milliseconds apart.
    """

    def __init__(self, file: IO[bytes], cancel: threading.Event | None = None):
        self.file = file
        self.cancel = cancel
        self.buf = np.empty(2 * _CHUNK, dtype=np.float32)
        self.used = 0  # frames waiting in buf
        self.frames = 0  # frames rendered in all
        self.peak = 0.0  # of the frames flushed so far

    def render(self, synth: _Synth, frames: int) -> None:
        _raise_deferred()
        while frames > 0:
            n = min(frames, _CHUNK - self.used)
            synth.render_into(self.buf, self.used, n)
            self.used += n
            self.frames += n
            frames -= n
            if self.used == _CHUNK:
                self.flush()

    def flush(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled
        self._store(self.buf[: 2 * self.used])
        self.used = 0

    def write(self, buf: np.ndarray) -> None:
        self.flush()
        self._store(buf)
        self.frames += buf.size // 2

    def _store(self, buf: np.ndarray) -> None:
        if buf.size:
            self.peak = max(self.peak, float(np.abs(buf).max()))
            buf.tofile(self.file)

    def chunks(self) -> Iterator[np.ndarray]:
        self.flush()
        self.file.seek(0)
        while (buf := np.fromfile(self.file, dtype=np.float32, count=2 * _CHUNK)).size:
            yield buf


def _render_events(
    synth: _Synth,
    events: list[mido.Message],
    spill: _Spill,
    sample_rate: int,
    total_s: float,
    progress: ProgressFn,
) -> None:
    now = 0.0
    reported = 0.0
    for msg in events:
        now += msg.time
        # Frame positions come from absolute time, so rounding never accumulates into drift.
        spill.render(synth, round(now * sample_rate) - spill.frames)
        if now - reported >= 1.0:
            progress("render", now, total_s)
            reported = now
        if not msg.is_meta:
            synth.send(msg)


def _render_tail(synth: _Synth, spill: _Spill, sample_rate: int, end_s: float) -> None:
    """Release every note and render until silence or ``end_s``, fading out if cut short."""
    spill.flush()  # so that its peak covers every frame so far
    synth.release_all()
    block = max(1, round(_TAIL_BLOCK_S * sample_rate))
    limit = math.floor(end_s * sample_rate) - spill.frames
    threshold = spill.peak * 10 ** (_SILENCE_DB / 20)
    tail: list[np.ndarray] = []
    rendered = 0
    silent = False
    while rendered < limit and not silent:
        buf = synth.render(min(block, limit - rendered))
        rendered += buf.size // 2
        silent = synth.voices() == 0 and float(np.abs(buf).max()) <= threshold
        tail.append(buf)
    if not tail:
        return
    out = np.concatenate(tail)
    if not silent:
        fade = min(out.size // 2, round(_FADE_S * sample_rate))
        out[out.size - 2 * fade :] *= np.repeat(np.linspace(1, 0, fade, dtype=np.float32), 2)
    spill.write(out)


def _write_wav(spill: _Spill, path: Path, sample_rate: int, peak_dbfs: float) -> float:
    """Scale the spilled floats so the peak lands at ``peak_dbfs``; return the written peak."""
    gain = 10 ** (peak_dbfs / 20) * _FULL_SCALE / spill.peak
    written = 0
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        for buf in spill.chunks():
            pcm = np.clip(np.rint(buf * gain), -_FULL_SCALE, _FULL_SCALE).astype("<i2")
            written = max(written, int(np.abs(pcm).max()))
            w.writeframes(pcm.tobytes())
    return 20 * math.log10(written / _FULL_SCALE)


def render_midi(
    midi_path: str | Path,
    wav_path: str | Path,
    *,
    soundfont: str | Path | None = None,
    config: RenderConfig = RenderConfig(),  # noqa: B008 (frozen: sharing is safe)
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
) -> RenderedAudio:
    """Render a MIDI file to a 16-bit stereo WAV whose peak is ``config.peak_dbfs``.

    The audio starts at the score's time 0 and runs to its last event, then through the release
    tail (at most ``config.max_tail_s``). Progress is reported in seconds of music. A score
    longer than ``limits().max_render_s`` is refused before anything is rendered; setting
    ``cancel`` stops the render part-way (:class:`composer.process.Cancelled`).
    """
    midi_path, wav_path = Path(midi_path), Path(wav_path)
    events = read_messages(midi_path)
    if not any(m.type == "note_on" and m.velocity > 0 for m in events):
        raise ComposerError(midi_path, "has no notes to render")
    sr = config.sample_rate
    total_s = 0.0
    last_note_s = 0.0
    for m in events:
        total_s += m.time
        if m.type in ("note_on", "note_off"):
            last_note_s = total_s
    longest = limits().max_render_s
    if total_s > longest:
        raise ComposerError(
            midi_path,
            f"plays for {duration_words(total_s)} at its tempo; the longest composer renders is "
            f"{duration_words(longest)} (COMPOSER_MAX_RENDER_S raises it)",
        )
    sf_path = find_soundfont(soundfont)

    _LOGGED.clear()
    _DEFERRED.clear()
    with atomic_path(wav_path, overwrite=overwrite, kind="wav") as tmp:
        synth = _Synth(sr, config.synth_gain, sf_path)
        try:
            with tempfile.TemporaryFile(dir=tmp.parent) as spill_file:
                spill = _Spill(spill_file, cancel)
                _render_events(synth, events, spill, sr, total_s, progress)
                _render_tail(synth, spill, sr, total_s + config.max_tail_s)
                if spill.peak == 0.0:
                    raise ComposerError(
                        midi_path,
                        f"renders to silence with {sf_path.name} (no preset sounded for its notes)",
                    )
                peak = _write_wav(spill, tmp, sr, config.peak_dbfs)
                frames = spill.frames
        finally:
            synth.close()
    progress("render", total_s, total_s)
    log.info("rendered %s: %.1f s, peak %.2f dBFS", wav_path, frames / sr, peak)
    return RenderedAudio(
        path=str(wav_path),
        midi=str(midi_path),
        soundfont=str(sf_path),
        sample_rate=sr,
        duration=frames / sr,
        midi_duration=last_note_s,
        peak_dbfs=peak,
    )
