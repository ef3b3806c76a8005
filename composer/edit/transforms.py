"""Exact edits of a score (a ``symusic.Score`` in ticks): each a pure function that returns a
new Score and changes only what it names.

Every other note (pitch, onset, duration, velocity), every other track (its name, program and
drum flag, and so its place in the file and its channel), the tempo map, the markers and the
chord-symbol track stay as they were. Where an edit moves the harmony of the whole texture (a
transposition of every pitched track, a change of key) the chord symbols and key signatures of
what it moved move with it, because left behind they would name chords and a key the music no
longer has.

A track is named by its index (0-based, as the error for an unknown track lists them), by its
role word (``melody``, ``harmony1``, ``bass``: composer's names are "role (Instrument)") or by
its exact name.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import symusic

from composer.arrange.harmony import QUALITIES, Chord
from composer.config import tempo_problem
from composer.errors import ComposerError
from composer.music import instruments, keys
from composer.music.keys import KRUMHANSL, Key, key_from_signature, key_name, key_signature
from composer.music.midi import bar_starts
from composer.music.roles import CHORDS_TRACK
from composer.plan.request import instruments_in

TrackRef = int | str
Bars = tuple[int, int]  # first and last bar, 1-based, inclusive
MUTED = " (muted)"  # ends the name of a track whose notes were removed
# Semitones above the tonic of the degrees the two modes spell differently (the third, sixth
# and seventh), a semitone lower in minor than in major.
_MODAL = {"major": (4, 9, 11), "minor": (3, 8, 10)}


# --- what the user names: tracks, bars, instruments ------------------------------------------


def role(name: str) -> str:
    """The role word of a composer track name: "melody (Flute)" -> "melody"."""
    return name.split(" (", 1)[0]


def listing(score: symusic.Score) -> str:
    """The score's tracks as a user names them: "0 melody (Flute), 1 bass (Cello), ..."."""
    names = [f"{i} {t.name or '(unnamed)'}" for i, t in enumerate(score.tracks)]
    return ", ".join(names) or "no tracks"


def track_index(score: symusic.Score, track: TrackRef) -> int:
    """The index of the track ``track`` names; ComposerError listing the tracks otherwise."""
    names = [t.name for t in score.tracks]
    if isinstance(track, int) or track.strip().isdigit():
        if 0 <= int(track) < len(names):
            return int(track)
    else:
        word = track.strip()
        found = [i for i, n in enumerate(names) if n == word] or [
            i for i, n in enumerate(names) if role(n).lower() == word.lower()
        ]
        if len(found) == 1:
            return found[0]
        if found:
            raise ComposerError(
                None, f"{len(found)} tracks are {word!r} (tracks {', '.join(map(str, found))}): "
                "name one by its index"
            )  # fmt: skip
    raise ComposerError(None, f"no track {track!r}: the score has {listing(score)}")


def parse_bars(text: str | Sequence[int]) -> Bars:
    """ "9-12" (or "9", or (9, 12)) -> (9, 12); ComposerError for anything else."""
    if not isinstance(text, str):
        first, last = (text[0], text[-1]) if len(text) else (0, -1)
    elif m := re.fullmatch(r"\s*(\d+)\s*(?:[-–]\s*(\d+)\s*)?", text):
        first, last = int(m[1]), int(m[2] or m[1])
    else:
        raise ComposerError(None, f"bars {text!r}: give a range of bar numbers such as 9-12")
    if not 1 <= first <= last:
        raise ComposerError(None, f"bars {first}-{last}: the first bar is 1, and a range runs up")
    return first, last


def bar_span(score: symusic.Score, bars: Bars | None) -> tuple[int, int]:
    """The ticks [start, end) of ``bars``; the whole score for None. ComposerError when the
    bars are not all in the score."""
    if bars is None:
        return 0, np.iinfo(np.int64).max
    starts = bar_starts(score)
    first, last = bars
    if not 1 <= first <= last <= len(starts):
        raise ComposerError(
            None, f"bars {first}-{last} are outside the score, which has {len(starts)} bars "
            f"(1-{len(starts)})"
        )  # fmt: skip
    return starts[first - 1], starts[last] if last < len(starts) else np.iinfo(np.int64).max


def program_of(word: int | str) -> int:
    """A General MIDI program from a number or an instrument's name, in the words the request
    reader knows ("flute", "cello", "string ensemble 1")."""
    if isinstance(word, int) or word.strip().isdigit():
        return int(word)
    # The request reader's vocabulary (General MIDI names and their plain aliases) is the one
    # table composer has of instrument words.
    programs, rest = instruments_in(word, [])
    if len(programs) != 1 or rest.strip():
        raise ComposerError(None, f"unknown instrument {word!r}: give a General MIDI name "
                                  "('flute', 'cello', 'string ensemble 1') or 0-127")  # fmt: skip
    return programs[0]


# --- the edits -------------------------------------------------------------------------------


def set_instrument(score: symusic.Score, track: TrackRef, program: int) -> symusic.Score:
    """The track played by General MIDI ``program``, its name's instrument renamed to match."""
    if not 0 <= program <= 127:
        raise ComposerError(None, f"program {program} is outside General MIDI's 0-127")
    out = score.copy()
    i = track_index(out, track)
    t = out.tracks[i]
    if t.is_drum or t.name == CHORDS_TRACK:
        why = "it is a drum track" if t.is_drum else "it holds chord symbols and plays nothing"
        raise ComposerError(None, f"cannot choose an instrument for track {i} ({t.name}): {why}")
    t.program = program
    if (parts := _name_parts(t.name)) is not None:
        t.name = f"{parts[0]} ({instruments.name(program)}){parts[1]}"
    return out


def transpose(
    score: symusic.Score,
    semitones: int,
    tracks: Sequence[TrackRef] | None = None,
    bars: Bars | None = None,
) -> symusic.Score:
    """The pitched tracks (or ``tracks``) moved by ``semitones``, in ``bars`` or throughout;
    the key signatures move too when the whole score does."""
    chosen = _pitched(score, tracks)
    whole = tracks is None and bars is None
    doing = f"transposing by {semitones:+d}"
    return _move(score, chosen, np.full(12, semitones), bars, whole, doing)


def change_key(score: symusic.Score, key: str | Key) -> symusic.Score:
    """The score in ``key`` ("E minor"): moved by the shorter way between the two tonics, and,
    where the mode changes, the third, sixth and seventh degrees lowered (major to minor) or
    raised (minor to major) a semitone; chromatic notes just move with the rest. Into the
    minor, the seventh stays the leading tone where the music sounds the dominant's chord
    (V and vii stay major and diminished, as the minor's cadences have them), and where a
    line rises by step through it to the tonic, with the sixth before it (the melodic minor,
    as the minor's own melodies rise)."""
    if isinstance(key, str):
        try:
            key = keys.parse_key(key)
        except ValueError as e:
            raise ComposerError(None, str(e)) from None
    (tonic, mode), (new_tonic, new_mode) = score_key(score), key
    shift = (new_tonic - tonic + 5) % 12 - 5  # -5..+6 semitones
    table = np.full(12, shift)
    if new_mode != mode:
        for degree in _MODAL[mode]:
            table[(tonic + degree) % 12] += 1 if mode == "minor" else -1
    chosen = _pitched(score, None)
    out = _move(score, chosen, table, None, False,
                f"changing the key to {key_name(new_tonic, new_mode)}")  # fmt: skip
    if (mode, new_mode) == ("major", "minor"):
        leading = (tonic + 11) % 12
        dominant = _dominant_beats(score, tonic)
        keep = table.copy()
        keep[leading] = shift  # the leading tone moves with the tonic
        for i in chosen:
            t, was = out.tracks[i], score.tracks[i]
            if t.name == CHORDS_TRACK:
                for lyric, old in zip(t.lyrics, was.lyrics, strict=True):
                    if _root(old.text) in ((tonic + 7) % 12, leading):
                        lyric.text = _moved_symbol(old.text, tuple(int(x) for x in keep))
            if not len(t.notes):
                continue
            arr, old = t.notes.numpy(), was.notes.numpy()
            beat = np.minimum(old["time"] // score.ticks_per_quarter, len(dominant) - 1)
            up = (old["pitch"] % 12 == leading) & dominant[beat]
            pitch = arr["pitch"].astype(np.int16) + up
            t.notes = _melodic_minor(
                symusic.Note.from_numpy(
                    arr["time"], arr["duration"], pitch.astype(np.int8), arr["velocity"]
                ),
                new_tonic,
            )
    signatures = [_moved_signature(ks, shift, {mode: new_mode}) for ks in out.key_signatures]
    out.key_signatures = signatures or [symusic.KeySignature(0, *key_signature(key))]
    return out


def _dominant_beats(score: symusic.Score, tonic: int) -> np.ndarray:
    """Per quarter note of ``score`` (in the major key on ``tonic``): whether its pitched
    notes sound the dominant's chord (V, V7) or the leading tone's (vii)."""
    from composer.music.harmony import CHORDS, window_chords

    tpq = score.ticks_per_quarter
    beats = max(1, -(-max((t.end() for t in score.tracks), default=0) // tpq))
    wanted = [{(tonic + 7 + i) % 12 for i in c} for c in (CHORDS[0], CHORDS[3])]
    wanted.append({(tonic + 11 + i) % 12 for i in CHORDS[2]})
    parts = [i for i, t in enumerate(score.tracks) if t.name != CHORDS_TRACK]
    chords = window_chords(score, parts, list(range(0, (beats + 1) * tpq, tpq)))
    return np.array([c in wanted for c in chords], dtype=bool)


def _root(symbol: str) -> int | None:
    """The root pitch class of one of the arranger's chord symbols."""
    found = _chord_symbols()[0].get(symbol)
    return None if found is None else found[0]


def _melodic_minor(notes, tonic: int):
    """``notes`` (in a minor key with ``tonic``) with each lowered seventh that steps up to the
    tonic raised to the leading tone, and each lowered sixth that steps up to that leading
    tone raised too. A note's next is the nearest pitch attacked next in its track."""
    arr = notes.numpy()
    pitch = arr["pitch"].astype(np.int16)
    order = np.lexsort((pitch, arr["time"]))
    # The notes of each onset, in time order: the sorted times split where they change.
    at = np.split(order, np.flatnonzero(np.diff(arr["time"][order])) + 1)
    for k in range(len(at) - 2, -1, -1):  # from the end: a note's next is already final
        following = pitch[at[k + 1]]
        for j in at[k]:
            nxt = following[np.abs(following - pitch[j]).argmin()]
            degree = (pitch[j] - tonic) % 12
            if (degree == 10 and nxt - pitch[j] == 2 and (nxt - tonic) % 12 == 0) or \
                    (degree == 8 and nxt - pitch[j] == 3 and (nxt - tonic) % 12 == 11):  # fmt: skip
                pitch[j] += 1
    return symusic.Note.from_numpy(
        arr["time"], arr["duration"], pitch.astype(np.int8), arr["velocity"]
    )


def set_tempo(score: symusic.Score, bpm: float) -> symusic.Score:
    """The tempo map scaled so its first tempo is ``bpm`` (the others in proportion; the
    notes keep their ticks, so they keep their bars)."""
    if why := tempo_problem(bpm):
        raise ComposerError(None, f"cannot set the tempo: {why}")
    out = score.copy()
    tempos = sorted(out.tempos, key=lambda t: t.time)
    if not tempos:  # MIDI's default 120 until now: one tempo says the new one
        out.tempos = [symusic.Tempo(0, qpm=bpm)]
        return out
    factor = bpm / tempos[0].qpm
    out.tempos = [symusic.Tempo(t.time, qpm=t.qpm * factor) for t in out.tempos]
    return out


def mute(score: symusic.Score, track: TrackRef) -> symusic.Score:
    """The track silenced: its notes (and the controllers, bends and pedal that shaped them)
    removed and " (muted)" added to its name. The track itself stays, so the others keep their
    places and channels. (A note-on of velocity 0 is a note-off in MIDI: it cannot mute.)"""
    out = score.copy()
    i = track_index(out, track)
    t = out.tracks[i]
    if t.name == CHORDS_TRACK:
        raise ComposerError(None, f"cannot mute track {i} ({t.name}): it holds chord symbols "
                                  "and plays nothing (delete it to remove them)")  # fmt: skip
    for events in (t.notes, t.controls, t.pitch_bends, t.pedals):
        events.clear()
    if not t.name.endswith(MUTED):
        t.name += MUTED
    return out


def delete(score: symusic.Score, track: TrackRef) -> symusic.Score:
    """The score without the track."""
    out = score.copy()
    del out.tracks[track_index(out, track)]
    return out


# --- helpers ---------------------------------------------------------------------------------


def score_key(score: symusic.Score) -> Key:
    """The key the score states first, or (stating none) the key its notes fit best."""
    if len(score.key_signatures):
        first = min(score.key_signatures, key=lambda ks: ks.time)
        return key_from_signature(first.key, first.tonality)
    hist = np.zeros(12)
    for t in score.tracks:
        if not t.is_drum and len(t.notes):
            arr = t.notes.numpy()
            np.add.at(hist, arr["pitch"].astype(np.int64) % 12, arr["duration"])
    return keys.find_key(hist, KRUMHANSL) if hist.any() else (0, "major")


def _moved_signature(
    ks: symusic.KeySignature, shift: int, modes: dict[str, str] | None = None
) -> symusic.KeySignature:
    """``ks`` with its tonic moved by ``shift`` and its mode renamed through ``modes``."""
    tonic, mode = key_from_signature(ks.key, ks.tonality)
    moved = ((tonic + shift) % 12, (modes or {}).get(mode, mode))
    return symusic.KeySignature(ks.time, *key_signature(moved))


def _name_parts(name: str) -> tuple[str, str] | None:
    """(role, what follows the instrument) of "role (Instrument)..." names, where the
    instrument may hold parentheses of its own ("Lead 1 (square)"); None for other names."""
    if " (" not in name:
        return None
    head, rest = name.split(" (", 1)
    depth = 1
    for i, c in enumerate(rest):
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return head, rest[i + 1 :]
    return None


def _pitched(score: symusic.Score, tracks: Sequence[TrackRef] | None) -> list[int]:
    """The indices of ``tracks`` (every track but the drums by default), refusing drums."""
    if tracks is None:
        return [i for i, t in enumerate(score.tracks) if not t.is_drum]
    chosen = sorted({track_index(score, t) for t in tracks})
    for i in chosen:
        if score.tracks[i].is_drum:
            name = score.tracks[i].name
            raise ComposerError(None, f"track {i} ({name}) is a drum track: its pitches "
                                      "choose the drums, so it is never transposed")  # fmt: skip
    return chosen


def _move(
    score: symusic.Score, chosen: list[int], table: np.ndarray, bars: Bars | None,
    signatures: bool, doing: str,
) -> symusic.Score:  # fmt: skip
    """Each note of the ``chosen`` tracks starting in ``bars`` moved by ``table[pitch % 12]``;
    chord symbols there too; the key signatures when ``signatures``. Refuses (naming the note)
    a pitch that would leave MIDI's 0-127."""
    out = score.copy()
    lo, hi = bar_span(out, bars)
    for i in chosen:
        t = out.tracks[i]
        if t.name == CHORDS_TRACK:
            for lyric in t.lyrics:
                if lo <= lyric.time < hi:
                    lyric.text = _moved_symbol(lyric.text, tuple(int(x) for x in table))
        if not len(t.notes):
            continue
        arr = t.notes.numpy()
        pitch = arr["pitch"].astype(np.int16)
        inside = (arr["time"] >= lo) & (arr["time"] < hi)
        moved = np.where(inside, pitch + table[pitch % 12], pitch)
        if (bad := np.flatnonzero((moved < 0) | (moved > 127))).size:
            j = int(bad[0])
            bar = bisect.bisect_right(bar_starts(out), int(arr["time"][j]))
            raise ComposerError(
                None, f"{doing} would take a note of {t.name or f'track {i}'} in bar {bar} "
                f"from {pitch[j]} to {moved[j]}, outside MIDI's 0-127"
            )  # fmt: skip
        t.notes = symusic.Note.from_numpy(
            arr["time"], arr["duration"], moved.astype(np.int8), arr["velocity"]
        )
    if signatures:
        out.key_signatures = [_moved_signature(ks, int(table[0])) for ks in out.key_signatures]
    return out


@lru_cache(maxsize=1)
def _chord_symbols() -> tuple[dict[str, tuple[int, str]], dict[frozenset[int], str]]:
    """The arranger's chord symbols: symbol -> (root, quality), and tones -> symbol."""
    chords = [Chord(0, 0, root, q) for root in range(12) for q in QUALITIES]
    return ({c.symbol(): (c.root, c.quality) for c in chords},
            {frozenset(c.tones()): c.symbol() for c in chords})  # fmt: skip


def chord_name(tones: set[int]) -> str | None:
    """The arranger's symbol for the chord of these pitch classes, if it has one."""
    return _chord_symbols()[1].get(frozenset(tones))


@lru_cache(maxsize=256)
def _moved_symbol(text: str, table: tuple[int, ...]) -> str:
    """The chord symbol ``text`` with each tone moved by ``table[pitch class]``: the chord the
    moved notes make (its triad where the seventh chord has no symbol), else its root moved.
    Text that is not one of composer's chord symbols is left as written."""
    by_symbol, by_tones = _chord_symbols()
    if text not in by_symbol:
        return text
    root, quality = by_symbol[text]
    tones = Chord(0, 0, root, quality).tones()
    for wanted in (tones, tones[:3]):
        if (found := by_tones.get(frozenset((pc + table[pc]) % 12 for pc in wanted))) is not None:
            return found
    return Chord(0, 0, (root + table[root]) % 12, quality).symbol()
