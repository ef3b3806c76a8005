"""The pitched notes of a score as flat arrays, so that velocities are shaped in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic


@dataclass
class Notes:
    """All pitched notes: onset and duration (ticks), pitch, velocity, and the voice (index
    into the tracks they came from). Velocities are floats until written back."""

    time: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    voice: np.ndarray

    @classmethod
    def gather(cls, tracks: list[symusic.Track]) -> Notes:
        parts = [(t.notes.numpy(), v) for v, t in enumerate(tracks)]
        return cls(
            *(
                np.concatenate([p[k].astype(np.int64) for p, _ in parts] or [np.zeros(0, int)])
                for k in ("time", "duration", "pitch")
            ),
            np.concatenate([p["velocity"].astype(float) for p, _ in parts] or [np.zeros(0)]),
            np.concatenate([np.full(len(p["time"]), v) for p, v in parts] or [np.zeros(0, int)]),
        )

    def __len__(self) -> int:
        return len(self.time)

    def extend(
        self,
        time: np.ndarray,
        duration: np.ndarray,
        pitch: np.ndarray,
        velocity: np.ndarray,
        voice: np.ndarray,
    ) -> Notes:
        """A copy with the given notes added (arrays of equal length)."""
        return Notes(
            np.concatenate([self.time, np.asarray(time, dtype=np.int64)]),
            np.concatenate([self.duration, np.asarray(duration, dtype=np.int64)]),
            np.concatenate([self.pitch, np.asarray(pitch, dtype=np.int64)]),
            np.concatenate([self.velocity, np.asarray(velocity, dtype=float)]),
            np.concatenate([self.voice, np.asarray(voice, dtype=np.int64)]),
        )

    def write(self, tracks: list[symusic.Track], velocity: np.ndarray) -> None:
        """Each voice's notes, in time order, with ``velocity`` (rounded, 1..127), into its
        track."""
        vel = np.clip(np.rint(velocity), 1, 127).astype(np.int64)
        for v, track in enumerate(tracks):
            idx = np.flatnonzero(self.voice == v)
            idx = idx[np.lexsort((self.pitch[idx], self.time[idx]))]
            track.notes = symusic.Note.from_numpy(
                self.time[idx], self.duration[idx], self.pitch[idx], vel[idx]
            )
