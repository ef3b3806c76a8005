"""A fixed-length symbolic feature vector per piece, and the distance between two of them.

Layout (``FEATURE_VERSION`` 1, ``FEATURE_DIM`` = 59 float32 values):

====== ======= ==========================================================================
slice  block   contents
====== ======= ==========================================================================
0:12   pc      duration-weighted pitch-class histogram, **key-relative**: rotated so the
               tonic that Krumhansl-Schmuckler finds on this same histogram is index 0.
               A piece and its transposition get the same vector, so a reference
               transposed to a plan's key (as priming does) still matches it, and a
               search by "sounds like this" is not a search by key (key is an attribute).
12:23  melody  signed interval histogram of the top line (highest pitch at each onset),
               bins: down >=8, 5-7, 3-4, 2, 1 semitones, unison, up 1, 2, 3-4, 5-7, >=8.
23:34  bass    the same for the bottom line (lowest pitch at each onset).
34:46  phase   onset positions within the quarter note, 12 bins (1/12 quarter each: 16ths
               and triplets both land on bins), over the distinct onsets of all tracks.
46:53  ioi     inter-onset intervals of the distinct onsets, log2 bins centred on
               1/16, 1/8, 1/4, 1/2, 1, 2, >=4 quarters.
53:59  texture density and range, each scaled to about [0, 1]: notes per quarter
               (log), mean sounding voices, pitched tracks / 6, pitch spread (std / 12),
               mean pitch ((p - 36) / 48), mean note length (log2 quarters).
====== ======= ==========================================================================

Each histogram sums to 1 (all zero when it has no events). Tracks are read without regard to
their program, so a role-labelled corpus score, a decoded score and a user's MIDI file are
treated alike; drum tracks are left out. Times are in quarter notes, so any tpq works.
"""

from __future__ import annotations

import numpy as np
import symusic

from composer.music.keys import KRUMHANSL, find_key

FEATURE_VERSION = 1
# (name, start, stop); the blocks documented above, in order.
BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("pc", 0, 12),
    ("melody", 12, 23),
    ("bass", 23, 34),
    ("phase", 34, 46),
    ("ioi", 46, 53),
    ("texture", 53, 59),
)
FEATURE_DIM = BLOCKS[-1][2]
# How much each block counts in the distance: set by judgement, not fitted. Pitch content and
# the melody's motion are what a listener hears first; the bass line and the texture scalars
# are coarser summaries, so they count half.
BLOCK_WEIGHTS: dict[str, float] = {
    "pc": 1.0,
    "melody": 1.0,
    "bass": 0.5,
    "phase": 0.75,
    "ioi": 0.75,
    "texture": 0.5,
}
_HISTOGRAMS = ("pc", "melody", "bass", "phase", "ioi")

# Upper edges (semitones) of the signed interval bins; the last bin takes the rest.
_INTERVAL_EDGES = np.array([-7.5, -4.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 4.5, 7.5])


def symbolic_features(score: symusic.Score) -> np.ndarray:
    """The (FEATURE_DIM,) float32 feature vector of ``score`` (all zeros when it has no notes)."""
    tpq = float(score.ticks_per_quarter)
    starts, ends, pitches = [], [], []
    tracks = 0
    for track in score.tracks:
        if track.is_drum or not len(track.notes):
            continue
        arr = track.notes.numpy()
        starts.append(arr["time"])
        ends.append(arr["time"] + arr["duration"])
        pitches.append(arr["pitch"])
        tracks += 1
    out = np.zeros(FEATURE_DIM, np.float32)
    if not tracks:
        return out
    start = np.concatenate(starts).astype(np.float64) / tpq  # (n,) quarters
    dur = np.maximum(np.concatenate(ends).astype(np.float64) / tpq - start, 1e-3)
    pitch = np.concatenate(pitches).astype(np.int64)

    pc = np.bincount(pitch % 12, weights=dur, minlength=12)
    out[0:12] = _normalise(np.roll(pc, -find_key(pc, KRUMHANSL)[0]))

    # Sort by onset, then pitch: the first note of each onset is the lowest, the last the highest.
    order = np.lexsort((pitch, start))
    s, p = start[order], pitch[order]
    onset, first = np.unique(s, return_index=True)
    last = np.r_[first[1:], len(s)] - 1
    out[12:23] = _interval_histogram(p[last])
    out[23:34] = _interval_histogram(p[first])

    phase = np.rint((onset % 1.0) * 12).astype(np.int64) % 12
    out[34:46] = _normalise(np.bincount(phase, minlength=12))
    ioi = np.diff(onset)
    if len(ioi):
        bins = np.clip(np.rint(np.log2(np.maximum(ioi, 1 / 64)) + 4), 0, 6).astype(np.int64)
        out[46:53] = _normalise(np.bincount(bins, minlength=7))

    span = max(float((start + dur).max() - start.min()), 1.0)  # quarters the piece lasts
    out[53:59] = [
        np.log1p(len(pitch) / span) / np.log1p(16),
        min(dur.sum() / span / 6.0, 1.0),
        min(tracks / 6.0, 1.0),
        min(pitch.std() / 12.0, 1.0),
        np.clip((pitch.mean() - 36.0) / 48.0, 0.0, 1.0),
        np.clip((np.log2(dur.mean()) + 4.0) / 7.0, 0.0, 1.0),
    ]
    return out


def feature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Distance in [0, 1] between two feature vectors: 0 the same, 1 nothing alike.

    A weighted mean over the blocks: total variation (half the L1 distance) for each
    histogram, the mean absolute difference for the texture scalars.
    """
    return float(feature_distances(np.asarray(a)[None, :], b)[0])


def feature_distances(rows: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`feature_distance` from each of ``rows`` (n, FEATURE_DIM) to ``b``: (n,) float32."""
    diff = np.abs(np.asarray(rows, np.float32) - np.asarray(b, np.float32)[None, :])
    total = np.zeros(len(diff), np.float32)
    for name, lo, hi in BLOCKS:
        part = diff[:, lo:hi].sum(1) / 2 if name in _HISTOGRAMS else diff[:, lo:hi].mean(1)
        total += BLOCK_WEIGHTS[name] * part
    return total / sum(BLOCK_WEIGHTS.values())


def _interval_histogram(line: np.ndarray) -> np.ndarray:
    steps = np.diff(line)
    if not len(steps):
        return np.zeros(11, np.float32)
    return _normalise(np.bincount(np.searchsorted(_INTERVAL_EDGES, steps), minlength=11))


def _normalise(hist: np.ndarray) -> np.ndarray:
    total = hist.sum()
    return (hist / total if total > 0 else hist).astype(np.float32)
