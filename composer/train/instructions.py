"""Instructions written from music: measured attributes, then varied phrasings of them.

An instruction for a training window states some of the window's measured attributes (mode,
meter, density, register, and the melody's motion and rhythm) and a tempo class, each in one
of several phrasings from
``prompts/instructions/attributes.tsv``, inside a frame from ``frames.txt``; some attributes are
left unsaid on purpose, so the model learns that an unsaid attribute is free. Phrasings and
frames marked ``heldout`` never appear in training: the adherence evaluation writes its
instructions from them.

Tempo is not in the notes (the tokens carry no tempo; the plan sets beats per minute), so a
training instruction states a random tempo class: the decoder learns to ignore it, and the
instruction reader (composer.model.instruct) learns to read it for the plan.

Motion (stepwise or leaping), rhythm (even or dotted) and feel (calm: stepwise and even;
vigorous: leaping and dotted) are the character attributes: no control token sets them, so
the instruction's prefix vectors are their only way into the decoder, and their phrasings
carry the everyday words ("gentle", "jaunty", "like a parade") through which free text
reaches the music. Only their clear cases are stated (the outer thirds of the training
windows); the plan does not read them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from composer.music.attributes import ATTRIBUTES, VALUES, Attributes, Thresholds
from composer.music.words import meter_class
from composer.paths import INSTRUCTIONS
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import BAR, KEY, PITCH, TIMESIG


@dataclass(frozen=True)
class Measures:
    """Raw measurements of a token stream."""

    mode: str | None
    meter: str | None
    notes_per_beat: float
    mean_pitch: float
    step: float  # melody: mean absolute interval between onsets, semitones
    dotted: float  # melody: share of consecutive inter-onset pairs that go long-short (2:1, 3:1)


def melody(tok: ScoreTokenizer, ids) -> tuple[np.ndarray, np.ndarray]:
    """Onsets (in positions from the start) and pitches of the top line: the lowest role
    number present (0 is the melody), its highest pitch at each onset."""
    written, _ = tok.notes(ids)
    if not written:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = min(r for _, r, _, _ in written)
    line: dict[int, int] = {}  # onset -> highest pitch
    for t, r, p, _ in written:
        if r == top:
            line[t] = max(line.get(t, 0), p)
    onsets = sorted(line)
    return np.array(onsets), np.array([line[t] for t in onsets])


def measure(tok: ScoreTokenizer, ids) -> Measures:
    """Mode (from the key token), meter class (first time signature), density, register, and
    the melody's motion and rhythm (NaN with too few melody notes to tell)."""
    ids = np.asarray(ids, dtype=np.int64)
    kinds = tok.kind[ids]
    keys = ids[kinds == KEY]
    mode = None if not len(keys) else ("minor" if tok.value[keys[0]] >= 12 else "major")
    sigs = ids[kinds == TIMESIG]
    meter, beats_per_bar = None, 0.0
    if len(sigs):
        v = int(tok.value[sigs[0]])
        meter, beats_per_bar = meter_class(v // 100, v % 100), float(tok.beats[sigs[0]])
    pitches = tok.value[ids[kinds == PITCH]]
    beats = max(int((kinds == BAR).sum()), 1) * max(beats_per_bar, 1.0)
    mean_pitch = float(pitches.mean()) if len(pitches) else float("nan")
    times, line = melody(tok, ids)
    step = float(np.abs(np.diff(line)).mean()) if len(line) >= 3 else float("nan")
    ioi = np.diff(times)
    long_short = (ioi[:-1] >= 2 * ioi[1:]) & (ioi[:-1] <= 3 * ioi[1:])
    dotted = float(long_short.mean()) if len(ioi) >= 3 else float("nan")
    return Measures(mode, meter, len(pitches) / beats, mean_pitch, step, dotted)


def _bin(x: float, edges: tuple[float, float], names: tuple) -> str | None:
    if np.isnan(x):
        return None
    return names[0] if x < edges[0] else names[2] if x >= edges[1] else names[1]


def _feel(motion: str | None, rhythm: str | None) -> str | None:
    """Calm when the melody is both stepwise and even, vigorous when it both leaps and goes
    long-short: what "like a cradle song" or "like a parade" describe in notes, whatever the
    meter and tempo. (Density stays out: in the short training windows most measure sparse.)"""
    return {("stepwise", "even"): "calm", ("leaping", "dotted"): "vigorous"}.get((motion, rhythm))


def classify(m: Measures, th: Thresholds) -> Attributes:
    """Measured attributes (tempo is never in the notes; motion, rhythm and feel only when
    clear)."""
    motion = _bin(m.step, th.motion, ("stepwise", None, "leaping"))
    rhythm = _bin(m.dotted, th.rhythm, ("even", None, "dotted"))
    return Attributes(
        mode=m.mode,
        meter=m.meter,
        density=_bin(m.notes_per_beat, th.density, VALUES["density"]),
        register=_bin(m.mean_pitch, th.register, VALUES["register"]),
        motion=motion,
        rhythm=rhythm,
        feel=_feel(motion, rhythm),
    )


def fit_thresholds(measures: list[Measures]) -> Thresholds:
    """Tertiles of each measure over ``measures``."""

    def tertiles(values) -> tuple[float, float]:
        x = np.array([v for v in values if not np.isnan(v)])
        if not len(x):  # nothing measurable: no value is ever stated
            return (float("nan"), float("nan"))
        return tuple(float(q) for q in np.quantile(x, [1 / 3, 2 / 3]))

    return Thresholds(
        tertiles(m.notes_per_beat for m in measures),
        tertiles(m.mean_pitch for m in measures),
        tertiles(m.step for m in measures),
        tertiles(m.dotted for m in measures),
    )


@dataclass(frozen=True)
class Phrasebook:
    """Phrasings per (attribute, value) and sentence frames, for one split."""

    phrasings: dict[tuple[str, str], tuple[str, ...]]
    frames: tuple[str, ...]

    def write(self, attrs: Attributes, rng: np.random.Generator) -> str:
        """One instruction stating exactly ``attrs.stated()``, in random order and wording."""
        stated = list(attrs.stated().items())
        rng.shuffle(stated)
        clauses = [str(rng.choice(self.phrasings[(k, v)])) for k, v in stated]
        if len(clauses) > 1:
            text = ", ".join(clauses[:-1]) + " and " + clauses[-1]
        else:
            text = clauses[0] if clauses else "anything"
        return str(rng.choice(self.frames)).replace("{clauses}", text)


@lru_cache(maxsize=2)
def phrasebook(split: str, folder: Path = INSTRUCTIONS) -> Phrasebook:
    """The ``train`` or ``heldout`` phrasings and frames from ``prompts/instructions/``."""
    phrasings: dict[tuple[str, str], list[str]] = {}
    for line in (folder / "attributes.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        attr, value, where, text = line.split("\t")
        if where == split:
            phrasings.setdefault((attr, value), []).append(text)
    frames = []
    for line in (folder / "frames.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            where, text = line.split("\t")
            if where == split:
                frames.append(text)
    missing = [f"{a}={v}" for a, vs in VALUES.items() for v in vs if (a, v) not in phrasings]
    if missing or not frames:
        raise ValueError(f"{folder}: no {split} phrasing for {', '.join(missing) or 'frames'}")
    return Phrasebook({k: tuple(v) for k, v in phrasings.items()}, tuple(frames))


def say_some(attrs: Attributes, rng: np.random.Generator, keep: float = 0.6) -> Attributes:
    """``attrs`` with each known attribute kept with probability ``keep`` (at least one), and a
    random tempo class stated as often."""
    values = dataclasses.asdict(attrs)
    values["tempo"] = str(rng.choice(VALUES["tempo"]))
    known = [k for k, v in values.items() if v is not None]
    kept = [k for k in known if rng.random() < keep] or [str(rng.choice(known))]
    return Attributes(**{k: v for k, v in values.items() if k in kept})


def window_attributes(
    tok: ScoreTokenizer, ids, th: Thresholds, rng: np.random.Generator
) -> Attributes:
    """What a training instruction for window ``ids`` states: its measured attributes, some
    said (``say_some``)."""
    return say_some(classify(measure(tok, ids), th), rng)


def random_attributes(
    rng: np.random.Generator, keep: float = 0.6, names: tuple[str, ...] = ATTRIBUTES
) -> Attributes:
    """Each of ``names`` stated with probability ``keep`` (at least one), at a random value."""
    values = {a: str(rng.choice(VALUES[a])) for a in names}
    kept = [a for a in names if rng.random() < keep] or [str(rng.choice(names))]
    return Attributes(**{a: values[a] for a in kept})
