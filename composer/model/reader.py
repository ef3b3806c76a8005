"""The instruction reader: which attribute values (tempo, mode, density, meter, register) plain
words state.

An instruction is cut into clauses, and each clause is read twice:

- by cues: words that state a value outright (``prompts/instructions/cues.tsv``), numbers
  (beats per minute, time signatures), a level word with an attribute's noun ("low in note
  density", "a high register") and negated extremes ("not too fast": moderate);
- by a logistic regression from the clause's all-MiniLM-L6-v2 embedding to "attribute=value"
  or "none", fitted on the training phrasings. It knows topics well and polarity poorly
  ("dense" and "sparse" embed close), so it only reads clauses in which no cue fired, and only
  answers when its reading is at least ``THRESHOLD`` probable.

The cues travel inside ``reader.npz`` with the regression, so a saved reader reads the same
way wherever it is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.music.attributes import VALUES, Attributes
from composer.music.words import BPM, METER, bpm_of, meter_class, tempo_class
from composer.paths import INSTRUCTIONS

NONE = "none"  # the regression's label for words that state no attribute
# The regression's readings below this probability are dropped: chosen by cross-validation
# over the training phrasings (evals/reader_cv.py) as the largest that costs at most 0.5% of
# the stated attributes read right; it removes most readings of words that state nothing
# ("Compose for me:" read as a fast tempo at 0.44).
THRESHOLD = 0.4
CUES_FILE = INSTRUCTIONS / "cues.tsv"

# A point or colon between digits ("2.5", "3:4") is part of a number, not a clause break.
_CLAUSE_BREAKS = re.compile(r"[,;!?]|[.:](?!\d)| and | but ")


def clauses(text: str) -> list[str]:
    """The instruction cut at punctuation and conjunctions, lower-cased: each clause is read
    on its own, so one attribute's words do not blur another's."""
    parts = _CLAUSE_BREAKS.split(" " + text.lower() + " ")
    return [p.strip() for p in parts if re.search(r"[a-z]{2,}|\d", p)]


# Level words (low, middle, high), read with the one attribute noun in the same clause.
_LEVELS = tuple(
    re.compile(rf"\b({w})\b")
    for w in ("low|lower", "medium|middle|mid|moderate|average|middling|intermediate|normal",
              "high|higher")
)  # fmt: skip
_NOUNS = {
    attr: re.compile(rf"\b({w})\b")
    for attr, w in (
        ("tempo", "tempo|pace|speed|bpm"),
        ("density", "density|notes|texture|activity|busyness"),
        ("register", "register|pitch|pitched|range|octave|tessitura"),
    )
}
_LEVEL_VALUE = {
    "tempo": ("slow", "moderate", "fast"),
    "density": ("sparse", "medium", "dense"),
    "register": ("low", "middle", "high"),
}
# "not too fast", "neither busy nor sparse": the middle value of the attribute named.
_NEGATED = re.compile(r"\b(neither|nor|not (too|overly|very|that|so|particularly|excessively))\b")


@dataclass(frozen=True)
class Cues:
    """(attribute, value, pattern) rows, compiled once."""

    rows: tuple[tuple[str, str, str], ...]
    compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = tuple(re.compile(rf"\b(?:{p})\b") for _, _, p in self.rows)
        object.__setattr__(self, "compiled", patterns)

    @classmethod
    def load(cls, path: Path = CUES_FILE) -> Cues:
        rows = []
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                attr, value, pattern = line.split("\t")
                if value not in VALUES.get(attr, ()):
                    raise ValueError(f"{path}: unknown attribute value {attr}={value}")
                rows.append((attr, value, pattern))
        return cls(tuple(rows))

    def read(self, clause: str) -> dict[str, str]:
        """The attribute values ``clause`` states outright (an attribute whose cues disagree
        is left to the regression)."""
        found: dict[str, set[str]] = {}
        for m in BPM.finditer(clause):
            if (bpm := bpm_of(m)) > 0:
                found.setdefault("tempo", set()).add(tempo_class(bpm))
        for m in METER.finditer(clause):
            if cls := meter_class(int(m["num"]), int(m["den"])):
                found.setdefault("meter", set()).add(cls)
        nouns = [a for a, n in _NOUNS.items() if n.search(clause)]
        if len(nouns) == 1:
            for level, words in zip(_LEVEL_VALUE[nouns[0]], _LEVELS, strict=True):
                if words.search(clause):
                    found.setdefault(nouns[0], set()).add(level)
        for (attr, value, _), pattern in zip(self.rows, self.compiled, strict=True):
            if pattern.search(clause):
                found.setdefault(attr, set()).add(value)
        out = {}
        negated = bool(_NEGATED.search(clause))
        for attr, values in found.items():
            if negated and attr in _LEVEL_VALUE:
                out[attr] = _LEVEL_VALUE[attr][1]
            elif len(values) == 1:
                out[attr] = next(iter(values))
        return out


@dataclass
class Reader:
    """Cues, then a clause classifier: labels ("attribute=value", or "none"), weights
    (C, 384) and biases (C,) of a logistic regression on clause embeddings."""

    labels: list[str]
    weights: np.ndarray
    biases: np.ndarray
    cues: Cues = field(default_factory=lambda: Cues(()))
    threshold: float = 0.0  # regression readings less probable than this are not taken

    def read(self, text: str) -> tuple[Attributes, dict[str, float]]:
        """The attributes ``text`` states, and the probability of each reading (1.0: a cue)."""
        found: dict[str, tuple[str, float]] = {}
        parts = clauses(text)
        if parts:
            logits = embed(parts) @ self.weights.T + self.biases  # (clauses, C)
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            for clause, row in zip(parts, p, strict=True):
                said = self.cues.read(clause)
                for attr, value in said.items():
                    found[attr] = (value, 1.0)
                i = int(np.argmax(row))
                # A clause whose cues state something has been read: the regression would only
                # add a neighbouring topic ("low in note density" as a low register too).
                if said or self.labels[i] == NONE or row[i] < self.threshold:
                    continue
                attr, value = self.labels[i].split("=")
                if row[i] > found.get(attr, ("", 0.0))[1]:
                    found[attr] = (value, float(row[i]))
        reading = Attributes(**{a: v for a, (v, _) in found.items()})
        return reading, {a: round(c, 3) for a, (_, c) in found.items()}

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, labels=np.array(self.labels), weights=self.weights, biases=self.biases,
                     cues=np.array(["\t".join(r) for r in self.cues.rows], dtype=str),
                     threshold=np.float64(self.threshold))  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> Reader:
        with np.load(path) as z:
            rows = tuple(tuple(str(r).split("\t")) for r in z["cues"]) if "cues" in z else ()
            threshold = float(z["threshold"]) if "threshold" in z else 0.0
            return cls([str(x) for x in z["labels"]], z["weights"], z["biases"], Cues(rows),
                       threshold)  # fmt: skip


def embed(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings (N, 384), normalised, as the plan's vocabularies use."""
    from composer.music.words import sentence_model

    return np.asarray(
        sentence_model().encode(list(texts), normalize_embeddings=True, show_progress_bar=False)
    )
