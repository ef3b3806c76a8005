"""What went into a training corpus: counts per collection and style, and what was skipped."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from composer.outputs import atomic_write_text

if TYPE_CHECKING:
    from composer.music.corpus import SkippedPiece
    from composer.music.scores import CorpusPiece


@dataclass
class Counts:
    pieces: int = 0
    notes: int = 0
    tokens: int = 0  # filled in by whoever tokenises the pieces


@dataclass
class Manifest:
    """Counts per collection and per style, the skipped pieces with reasons, and the split seed."""

    seed: int = 0
    # Each style's val and test splits hold at least min(this, pieces // 8) pieces (0: the
    # split is the per-piece hash alone, as in caches built before this field).
    min_held_out: int = 0
    tokenizer: str = ""  # name and vocabulary hash of the tokenizer that counted the tokens
    tokenizer_hash: str = ""
    collections: dict[str, Counts] = field(default_factory=dict)
    styles: dict[str, Counts] = field(default_factory=dict)
    splits: dict[str, Counts] = field(default_factory=dict)  # train / val / test
    skipped: dict[str, str] = field(default_factory=dict)  # piece id -> reason
    # Time signatures rewritten to an equal-length one in the vocabulary ("8/8->4/4": pieces).
    meters_rewritten: dict[str, int] = field(default_factory=dict)

    def add(self, item: CorpusPiece | SkippedPiece, tokens: int = 0) -> None:
        """Count a converted piece (with its token count, if known) or record a skipped one."""
        if hasattr(item, "reason"):  # a SkippedPiece (no isinstance: music21 loads slowly)
            self.skipped[item.id] = item.reason
            return
        for table, name in [(self.collections, item.collection), (self.styles, item.style)]:
            counts = table.setdefault(name, Counts())
            counts.pieces += 1
            counts.notes += item.n_notes
            counts.tokens += tokens

    def add_split(self, split: str, notes: int, tokens: int) -> None:
        """Count one piece of ``split`` (splits are assigned once every piece is known)."""
        counts = self.splits.setdefault(split, Counts())
        counts.pieces += 1
        counts.notes += notes
        counts.tokens += tokens

    @property
    def total(self) -> Counts:
        return Counts(
            pieces=sum(c.pieces for c in self.styles.values()),
            notes=sum(c.notes for c in self.styles.values()),
            tokens=sum(c.tokens for c in self.styles.values()),
        )

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        data = json.loads(Path(path).read_text())
        return cls(
            seed=data["seed"],
            min_held_out=data.get("min_held_out", 0),
            tokenizer=data.get("tokenizer", ""),
            tokenizer_hash=data.get("tokenizer_hash", ""),
            collections={k: Counts(**v) for k, v in data["collections"].items()},
            styles={k: Counts(**v) for k, v in data["styles"].items()},
            splits={k: Counts(**v) for k, v in data.get("splits", {}).items()},
            skipped=dict(data["skipped"]),
            meters_rewritten=dict(data.get("meters_rewritten", {})),
        )
