"""Reading MIDI files, with every failure said in words: mido for playback (every message, in
time order) and symusic for scores (notes per track).

Both libraries stop at the first damaged byte with messages written for their developers
(mido's EOFError has none at all; symusic says "MiniMidi: Invaild ..."): ``problem`` turns each
into what a user can act on.
"""

from __future__ import annotations

import re
from pathlib import Path

import mido
import symusic

from composer.errors import ComposerError

# (pattern of the library's message, what it means); the first match wins. Groups are kept.
_PROBLEMS = [
    (r"MThd not found|header is not MThd", "it has no MIDI header (MThd): not a MIDI file"),
    (r"size is less than 14", "it is too short to be a MIDI file"),
    (r"no MTrk header", "a track does not start with its MTrk header (damaged)"),
    (r"Invalid chunk length|while reading chunk header",
     "a chunk declares more bytes than the file holds (truncated or damaged)"),
    (r"Unexpected EOF", "it ends in the middle of an event (truncated or damaged)"),
    (r"running status", "an event reuses a status byte that was never sent (damaged)"),
    (r"undefined status byte (0x[0-9a-f]+)", r"it holds an undefined status byte \1 (damaged)"),
    (r"wrong number of bytes for (\w+) message",
     r"a \1 message has the wrong number of bytes (damaged)"),
    (r"Message length (\d+) exceeds", r"a message claims to be \1 bytes long (damaged)"),
    (r"Could not decode key with (.*)", r"a key signature with \1 (damaged)"),
    (r"Division type is not ticks", "its time division is in SMPTE frames, not beats"),
    (r"midi format \((\d+)\)", r"its header declares format \1 (MIDI files are 0, 1 or 2)"),
    (r"Get velocity=(\d+)", r"a note has velocity \1 (MIDI allows 0-127)"),
    (r"Get control_value=(\d+)", r"a controller has value \1 (MIDI allows 0-127)"),
    (r"Get pitch_bend=(-?\d+)", r"a pitch bend of \1 is outside MIDI's range"),
    (r"Get (\w+)=(-?\d+)", r"a \1 of \2 is outside MIDI's range"),
]  # fmt: skip


def problem(exc: BaseException) -> str:
    """What a MIDI library's exception means for the file, in words."""
    text = str(exc).strip()
    for pattern, meaning in _PROBLEMS:
        if m := re.search(pattern, text, re.I):
            return m.expand(meaning)
    if isinstance(exc, EOFError):
        return "it ends before its tracks do (truncated or damaged)"
    if isinstance(exc, (KeyError, IndexError)) or not text:
        return "it holds an event that cannot be decoded (damaged)"
    # Strip the prefix some C++ readers add ("MiniMidi: ... : iostream error").
    text = re.sub(r"^\w+:\s*|:\s*iostream error$", "", text)
    return f"it cannot be read ({text[:120]})"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ComposerError(path, "no such file")
    if path.is_dir():
        raise ComposerError(path, "is a folder, not a MIDI file")
    if path.stat().st_size == 0:
        raise ComposerError(path, "is empty (0 bytes)")


def read_midi(path: str | Path) -> mido.MidiFile:
    """The file as mido reads it, for playback; ComposerError naming the file otherwise."""
    path = Path(path)
    _check_file(path)
    try:
        # clip=True: files in the wild carry out-of-range data bytes that players tolerate.
        midi = mido.MidiFile(path, clip=True)
    except Exception as e:  # mido raises OSError, EOFError, ValueError, KeyError, ...
        raise ComposerError(path, f"not a readable MIDI file: {problem(e)}") from None
    if midi.type == 2:
        raise ComposerError(
            path,
            "is a type 2 (asynchronous) MIDI file: its tracks have no common timeline to play",
        )
    if midi.ticks_per_beat <= 0:
        raise ComposerError(path, "not a readable MIDI file: its header gives 0 ticks per beat")
    return midi


def read_messages(path: str | Path) -> list[mido.Message]:
    """Every message of the file in playing order, merged over its tracks, each ``time`` the
    seconds since the one before (through the tempo map); ComposerError naming the file."""
    midi = read_midi(path)
    try:
        return list(midi)
    except Exception as e:  # a message mido parsed but cannot time or merge
        raise ComposerError(path, f"not a readable MIDI file: {problem(e)}") from None


def read_score(path: str | Path) -> symusic.Score:
    """The file as a symusic Score (ticks, notes per track); ComposerError naming the file."""
    path = Path(path)
    _check_file(path)
    try:
        return symusic.Score(str(path))
    except Exception as e:  # symusic raises RuntimeError for everything it cannot read
        raise ComposerError(path, f"not a readable MIDI file: {problem(e)}") from None


def bar_starts(score: symusic.Score) -> list[int]:
    """The tick where each bar of ``score`` begins (see :func:`bar_lines`)."""
    return bar_lines(score)[:-1]


def bar_lines(score: symusic.Score) -> list[int]:
    """Every bar line of ``score`` in ticks, the start of the first bar to the end of the last:
    bars laid from the time-signature map (4/4 until the first) over the score's length, the
    last note's end in any track rounded up to a whole bar; at least one bar. A meter change
    that falls inside a bar cuts that bar short, as the MusicXML does
    (composer.music.notation), so bar numbers agree between the two."""
    tpq = score.ticks_per_quarter
    end = 0
    for track in score.tracks:
        if len(track.notes):
            arr = track.notes.numpy()
            end = max(end, int((arr["time"].astype("int64") + arr["duration"]).max()))
    lengths: dict[int, int] = {}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        if ts.numerator > 0 and ts.denominator > 0:  # a damaged signature lays no bars
            lengths[ts.time] = max(1, ts.numerator * tpq * 4 // ts.denominator)
    changes = sorted(lengths)
    lines: list[int] = []
    pos, length, i = 0, 4 * tpq, 0
    while pos < end or not lines:
        while i < len(changes) and changes[i] <= pos:
            length, i = lengths[changes[i]], i + 1
        lines.append(pos)
        pos = min(pos + length, changes[i]) if i < len(changes) else pos + length
    return [*lines, pos]
