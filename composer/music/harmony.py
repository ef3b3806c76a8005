"""Harmony read from notes: the chord a set of sounding pitches makes, and how a part sounds
against the others (the share of its attacks consonant with them)."""

from __future__ import annotations

import numpy as np

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
