"""Generated tokens to a MIDI file a person can open and edit."""

from __future__ import annotations

from pathlib import Path

import symusic

from composer.music.keys import key_signature
from composer.outputs import atomic_path
from composer.tokens import ScoreTokenizer

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
