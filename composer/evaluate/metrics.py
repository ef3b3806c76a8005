"""Symbolic music metrics computed from token streams, so that generated and corpus music are
measured by the same code.

The four descriptive metrics follow MusPy's definitions (Dong et al., 2020), on composer's
grid of 12 steps per beat:

- pitch-class entropy: Shannon entropy (bits) of the histogram of note pitch classes;
- scale consistency: the largest share of notes inside one major or minor scale;
- groove consistency: 1 minus the mean Hamming distance between the onset patterns of
  consecutive bars of equal length, over the bar's steps;
- empty-beat rate: the share of beats in which no note starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import BAR, DURATION, PITCH, POSITION, TIMESIG

METRICS = ("pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate")
_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=bool)
_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=bool)  # natural minor


@dataclass(frozen=True)
class Notes:
    """The notes of a token stream on its bar grid (all times in steps)."""

    onset: np.ndarray  # (N,) absolute step of each note's start
    duration: np.ndarray  # (N,)
    pitch: np.ndarray  # (N,)
    bar_starts: np.ndarray  # (B,) absolute step of each bar
    bar_lengths: np.ndarray  # (B,) steps per bar
    meters: tuple[tuple[int, int], ...]  # (B,) each bar's time signature
    steps_per_beat: int

    @property
    def bars(self) -> int:
        return len(self.bar_starts)


def notes_of(tok: ScoreTokenizer, ids: list[int] | np.ndarray) -> Notes:
    """Parse a REMI stream (controls allowed) into notes and bars."""
    spb = tok.steps_per_beat
    onsets, durations, pitches = [], [], []
    starts, lengths, meters = [], [], []
    bar_start, pos, pitch = 0, 0, None
    for i in np.asarray(ids).tolist():
        k = tok.kind[i]
        if k == BAR:
            bar_start = starts[-1] + lengths[-1] if starts else 0
            starts.append(bar_start)
            lengths.append(4 * spb)
            meters.append((4, 4))
            pos = 0
        elif k == TIMESIG and starts:
            lengths[-1] = round(float(tok.beats[i]) * spb)
            v = int(tok.value[i])
            meters[-1] = (v // 100, v % 100)
        elif k == POSITION:
            pos = int(tok.value[i])
        elif k == PITCH:
            pitch = int(tok.value[i])
        elif k == DURATION and pitch is not None:
            onsets.append(bar_start + pos)
            durations.append(max(int(tok.ticks[i]), 1))
            pitches.append(pitch)
            pitch = None
    return Notes(
        np.asarray(onsets, dtype=np.int64),
        np.asarray(durations, dtype=np.int64),
        np.asarray(pitches, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        np.asarray(lengths, dtype=np.int64),
        tuple(meters),
        spb,
    )


def pitch_class_entropy(n: Notes) -> float:
    if len(n.pitch) == 0:
        return 0.0
    p = np.bincount(n.pitch % 12, minlength=12) / len(n.pitch)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def scale_consistency(n: Notes) -> float:
    if len(n.pitch) == 0:
        return 0.0
    hist = np.bincount(n.pitch % 12, minlength=12)
    best = max(
        hist[np.roll(scale, tonic)].sum() for scale in (_MAJOR, _MINOR) for tonic in range(12)
    )
    return float(best / len(n.pitch))


def groove_consistency(n: Notes) -> float:
    if n.bars < 2:
        return 1.0
    patterns = []
    for start, length in zip(n.bar_starts, n.bar_lengths, strict=True):
        pattern = np.zeros(length, dtype=bool)
        inside = n.onset[(n.onset >= start) & (n.onset < start + length)] - start
        pattern[inside] = True
        patterns.append(pattern)
    distances = [
        np.mean(a != b) for a, b in zip(patterns, patterns[1:], strict=False) if len(a) == len(b)
    ]
    return float(1 - np.mean(distances)) if distances else 1.0


def empty_beat_rate(n: Notes) -> float:
    if n.bars == 0:
        return 0.0
    total = int(n.bar_starts[-1] + n.bar_lengths[-1])
    beats = -(-total // n.steps_per_beat)
    used = np.zeros(beats, dtype=bool)
    # A position past its bar's length (an irregular bar in the source) counts in the last beat.
    used[np.minimum(n.onset // n.steps_per_beat, beats - 1)] = True
    return float(1 - used.mean())


def measure(n: Notes) -> dict[str, float]:
    """All four metrics of one piece."""
    return {
        "pitch_class_entropy": pitch_class_entropy(n),
        "scale_consistency": scale_consistency(n),
        "groove_consistency": groove_consistency(n),
        "empty_beat_rate": empty_beat_rate(n),
    }
