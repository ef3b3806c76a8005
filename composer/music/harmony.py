"""Harmony read from notes: the chord a set of sounding pitches makes (in each of a run of
windows of a score), and how a part sounds against the others (the share of its attacks
consonant with them)."""

from __future__ import annotations

import bisect

import numpy as np
import symusic

# Chords by their intervals above the root: major, minor, diminished, dominant and minor seventh.
CHORDS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 7, 10), (0, 3, 7, 10))
CONSONANT = frozenset({0, 3, 4, 7, 8, 9})  # semitones mod 12: unisons, thirds, fifths, sixths


def consonant_share(
    attacks: list[tuple[int, int]], others: list[tuple[int, int, int]]
) -> float | None:
    """Share of ``attacks`` (onset, pitch) consonant with every note of ``others`` (onset,
    end, pitch) sounding at that onset (an attack where nothing else sounds counts as
    consonant); None without attacks."""
    if not attacks:
        return None
    good = sum(
        all((p - q) % 12 in CONSONANT for on, end, q in others if on <= t < end) for t, p in attacks
    )
    return good / len(attacks)


_TEMPLATES = np.array([[int((pc - r) % 12 in c) for pc in range(12)]
                       for c in CHORDS for r in range(12)])  # fmt: skip
_ORDER = [(len(c), r) for c in CHORDS for r in range(12)]  # the tie-breaks


def chord_of(weights: np.ndarray) -> set[int]:
    """The pitch classes of the template that fits a 12-bin duration histogram best."""
    scores = 2 * _TEMPLATES @ weights - weights.sum()
    best = min(range(len(_ORDER)), key=lambda k: (-scores[k], *_ORDER[k]))
    return {pc for pc in range(12) if _TEMPLATES[best, pc]}


def window_weights(score: symusic.Score, tracks, edges: list[int]) -> np.ndarray:
    """(windows, 12): how long each pitch class of the pitched ``tracks`` of ``score`` sounds
    in each window [edges[k], edges[k + 1]) (ticks, ascending)."""
    weights = np.zeros((max(len(edges) - 1, 0), 12))
    for i in tracks:
        t = score.tracks[i]
        if t.is_drum or not len(t.notes):
            continue
        arr = t.notes.numpy()
        for start, end, pitch in zip(arr["time"].tolist(), (arr["time"] + arr["duration"]).tolist(),
                                     arr["pitch"].tolist(), strict=True):  # fmt: skip
            # Only the windows the note overlaps: linear in the notes, not windows x notes.
            k = max(bisect.bisect_right(edges, start) - 1, 0)
            while k < len(weights) and edges[k] < end:
                weights[k, pitch % 12] += max(0, min(end, edges[k + 1]) - max(start, edges[k]))
                k += 1
    return weights


def window_chords(score: symusic.Score, tracks, edges: list[int]) -> list[set[int] | None]:
    """The chord (``chord_of``) the pitched ``tracks`` of ``score`` sound in each window
    [edges[k], edges[k + 1]) (ticks, ascending), weighted by how long each pitch sounds
    there; None for a window where none sounds."""
    return [chord_of(w) if w.any() else None for w in window_weights(score, tracks, edges)]
