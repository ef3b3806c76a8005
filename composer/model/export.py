"""Generated tokens to a MIDI file a person can open and edit."""

from __future__ import annotations

from pathlib import Path

import symusic

from composer.outputs import atomic_path
from composer.tokens import ScoreTokenizer
from composer.tokens.spec import key_name

# Until the arrange stage chooses instruments, roles play a string ensemble (GM programs).
DEFAULT_PROGRAMS = {"melody": 40, "harmony1": 40, "harmony2": 41, "harmony3": 41,
                    "harmony4": 42, "bass": 42}  # fmt: skip


def write_midi(
    tok: ScoreTokenizer,
    ids: list[int],
    path: str | Path,
    *,
    tempo: float,
    key: tuple[int, str],
    overwrite: bool = False,
) -> symusic.Score:
    """Decode ``ids`` and write a type-1 MIDI file: a named track per role, tempo and key."""
    score = tok.decode(ids)
    score.tempos = [symusic.Tempo(0, float(tempo))]
    # symusic's key: sharps (negative for flats) and tonality 0 major / 1 minor.
    score.key_signatures = [symusic.KeySignature(0, *key_signature(key))]
    for track in score.tracks:
        track.program = DEFAULT_PROGRAMS.get(track.name, 0)
    with atomic_path(path, overwrite=overwrite, kind="midi") as tmp:
        score.dump_midi(str(tmp))
    return score


def key_signature(key: tuple[int, str]) -> tuple[int, int]:
    """(sharps, negative for flats; 0 major / 1 minor) of the key, as spelled by key_name."""
    tonic, mode = key
    major_tonic = (tonic + 3) % 12 if mode == "minor" else tonic
    fifths = (major_tonic * 7) % 12  # position on the circle of fifths from C
    if fifths > 6 or (fifths == 6 and "b" in key_name(*key)):
        fifths -= 12
    return fifths, int(mode == "minor")
