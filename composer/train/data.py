"""Training data: pieces tokenised once into one flat array, windows cut and transposed on the fly.

The token cache is a folder with ``tokens.npy`` (every piece's ids, concatenated, uint16),
``pieces.json`` (per piece: id, style, split, offset, length, bar starts, transposition range)
and ``manifest.json``. Windows always start at a bar and carry the piece's header (BOS, style,
key), so the model sees the controls it must follow however far into a piece the window lies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from composer.errors import ComposerError
from composer.outputs import atomic_path, atomic_write_text
from composer.paths import token_cache
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER, PITCH, PROGRAM
from composer.train.manifest import Manifest


@dataclass
class PieceEntry:
    id: str
    collection: str
    style: str
    split: str
    offset: int  # into tokens.npy
    length: int
    bars: list[int]  # token index (within the piece) of each Bar token
    shifts: tuple[int, int]  # transpositions (semitones) that keep every pitch in range


@dataclass
class TokenCache:
    folder: Path
    tokens: np.ndarray  # (N,) uint16
    pieces: list[PieceEntry]
    tokenizer_hash: str
    manifest: Manifest = field(default_factory=Manifest)

    def split(self, name: str) -> list[PieceEntry]:
        return [p for p in self.pieces if p.split == name]

    def ids(self, piece: PieceEntry) -> np.ndarray:
        return self.tokens[piece.offset : piece.offset + piece.length].astype(np.int64)

    @property
    def held_out_digest(self) -> str:
        """A short hash of which pieces are held out, and where: a model records the one it
        was trained with, so that it is never evaluated on pieces it learnt from."""
        held = sorted(f"{p.split}\0{p.id}" for p in self.pieces if p.split != "train")
        return hashlib.sha256("\n".join(held).encode()).hexdigest()[:16]

    def check_trained_with(self, info: dict, model: str | Path) -> None:
        """Fail with one line when checkpoint ``info`` was trained on another split of the
        data. Checkpoints that record no data are not checked; ones from before the digest
        record only the split's min_held_out (0 then)."""
        data = info.get("data")
        if not data:
            return
        digest = data.get("held_out")
        same = (
            digest == self.held_out_digest
            if digest
            else data.get("min_held_out", 0) == self.manifest.min_held_out
        )
        if not same:
            raise ComposerError(
                self.folder,
                f"holds out other pieces than {Path(model).name} was trained with; "
                "use the token cache it was trained on (--cache)",
            )

    @classmethod
    def load(cls, folder: str | Path | None, tokenizer: ScoreTokenizer) -> TokenCache:
        """The cache in ``folder`` (None: the default one, ``composer.paths.token_cache``)."""
        folder = Path(folder) if folder is not None else token_cache()
        try:
            meta = json.loads((folder / "pieces.json").read_text())
            tokens = np.load(folder / "tokens.npy", mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ComposerError(
                folder, f"not a token cache ({e}); `composer train` builds it"
            ) from None
        if meta["tokenizer_hash"] != tokenizer.vocab_hash:
            raise ComposerError(folder, "token cache was built with another tokenizer; rebuild it")
        pieces = [PieceEntry(**{**p, "shifts": tuple(p["shifts"])}) for p in meta["pieces"]]
        return cls(
            folder, tokens, pieces, meta["tokenizer_hash"], Manifest.load(folder / "manifest.json")
        )


def build_cache(
    pieces: Iterable,
    tokenizer: ScoreTokenizer,
    folder: str | Path,
    *,
    seed: int = 0,
    min_held_out: int = 10,
    progress: ProgressFn = no_progress,
    total: int | None = None,
) -> TokenCache:
    """Tokenise CorpusPiece / SkippedPiece items into a cache folder, with a manifest; pieces
    are split by ``assign_splits`` (seed, and at least ``min_held_out`` val and test pieces
    per style where the style is large enough)."""
    from composer.music.corpus import SkippedPiece, assign_splits  # music21 loads slowly

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chunks: list[np.ndarray] = []
    entries: list[PieceEntry] = []
    manifest = Manifest(
        seed=seed,
        min_held_out=min_held_out,
        tokenizer=tokenizer.spec.name,
        tokenizer_hash=tokenizer.vocab_hash,
    )
    notes: list[int] = []  # per entry, for the manifest's split counts
    offset = 0
    lo_pitch, hi_pitch = tokenizer.spec.pitch_range
    for n, piece in enumerate(pieces, 1):
        progress("tokenise", n, total)
        if isinstance(piece, SkippedPiece):
            manifest.add(piece)
            continue
        try:
            for rewrite in tokenizer.fit_meters(piece.score):
                manifest.meters_rewritten[rewrite] = manifest.meters_rewritten.get(rewrite, 0) + 1
        except ValueError as e:
            manifest.add(SkippedPiece(piece.id, str(e).split(" (")[0]))
            continue
        try:
            ids = np.asarray(
                tokenizer.encode(
                    piece.score,
                    piece.style,
                    (piece.key_tonic, piece.key_mode),
                    piece.section_starts,
                ),
                dtype=np.int64,
            )
        except Exception as e:  # one bad piece never aborts the build
            manifest.add(SkippedPiece(piece.id, f"tokenise: {type(e).__name__}: {e}"[:200]))
            continue
        if not (tokenizer.kind[ids] == PITCH).any():
            manifest.add(SkippedPiece(piece.id, "no notes in range after tokenising"))
            continue
        low, high = tokenizer.pitch_span(ids)
        shifts = (max(-6, lo_pitch - low), min(5, hi_pitch - 1 - high))
        bars = np.flatnonzero(ids == tokenizer.bar_id).tolist()
        entries.append(
            PieceEntry(piece.id, piece.collection, piece.style, "", offset, len(ids), bars, shifts)
        )
        notes.append(piece.n_notes)
        chunks.append(ids.astype(np.uint16))
        offset += len(ids)
        manifest.add(piece, tokens=len(ids))
    # Splits need every piece of a style (small styles are topped up), so they come last.
    splits = assign_splits([(e.id, e.style) for e in entries], seed, min_held_out=min_held_out)
    for entry, split, n in zip(entries, splits, notes, strict=True):
        entry.split = split
        manifest.add_split(split, notes=n, tokens=entry.length)
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, np.uint16)
    with atomic_path(folder / "tokens.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, tokens)
    atomic_write_text(
        folder / "pieces.json",
        json.dumps(
            {
                "tokenizer_hash": tokenizer.vocab_hash,
                "pieces": [asdict(e) for e in entries],
            }
        ),
    )
    manifest.save(folder / "manifest.json")
    log.info(
        "token cache: %d pieces, %d tokens, %d skipped", len(entries), offset, len(manifest.skipped)
    )
    return TokenCache(folder, tokens, entries, tokenizer.vocab_hash, manifest)


def style_textures(
    cache: TokenCache, tokenizer: ScoreTokenizer, split: str = "train"
) -> dict[str, list[int]]:
    """Per style, the voice roles that a majority of its ``split`` pieces write: the texture a
    request for that style gets when it names no voices (a folk tune is one melody, a chorale
    four voices). Measured, not declared, so a user's own corpus teaches its own textures."""
    role_of = np.where(tokenizer.kind == PROGRAM, tokenizer.value, -1)  # (V,) role id or -1
    n_roles = len(tokenizer.spec.roles)
    counts: dict[str, np.ndarray] = {}
    pieces: dict[str, int] = {}
    for p in cache.split(split):
        roles = np.unique(role_of[cache.ids(p)])
        seen = np.zeros(n_roles, int)
        seen[roles[roles >= 0]] = 1
        counts[p.style] = counts.get(p.style, 0) + seen
        pieces[p.style] = pieces.get(p.style, 0) + 1
    return {
        s: [int(r) for r in np.flatnonzero(c > pieces[s] / 2)] for s, c in sorted(counts.items())
    }


def eval_windows(cache: TokenCache, split: str, length: int) -> list[np.ndarray]:
    """Every piece of ``split`` cut at bar lines into windows of at most ``length`` tokens, each
    with the piece's header: the fixed set both the model and the n-gram baseline are scored on.
    """
    out = []
    for p in cache.split(split):
        ids = cache.ids(p)
        header, body_start = ids[:HEADER], HEADER
        bars = [b for b in p.bars if b >= body_start] + [p.length]
        start = body_start
        while start < p.length:
            # Furthest bar line that keeps the window within length.
            limit = start + length - HEADER
            ends = [b for b in bars if start < b <= limit]
            end = ends[-1] if ends else min(limit, p.length)
            out.append(np.concatenate([header, ids[start:end]]))
            start = end
    return out


class WindowSampler:
    """Random training windows: a piece (weighted by length), a bar to start at, a shift."""

    def __init__(
        self,
        cache: TokenCache,
        tokenizer: ScoreTokenizer,
        length: int,
        seed: int,
        split: str = "train",
        transpose: bool = True,
    ):
        self.cache = cache
        self.tok = tokenizer
        self.length = length
        self.pieces = cache.split(split)
        if not self.pieces:
            raise ComposerError(cache.folder, f"no pieces in the {split} split")
        weights = np.array([min(p.length, length) for p in self.pieces], dtype=np.float64)
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)
        self.transpose = transpose

    def window(self) -> np.ndarray:
        piece = self.pieces[self.rng.choice(len(self.pieces), p=self.p)]
        ids = self.cache.ids(piece)
        # Start at the first bar half the time (openings matter), else at any bar that leaves
        # a full window when the piece is long enough.
        body = self.length - HEADER
        starts = [b for b in piece.bars if b + body <= piece.length] or piece.bars[:1]
        start = starts[0] if self.rng.random() < 0.5 else starts[self.rng.integers(len(starts))]
        out = np.concatenate([ids[:HEADER], ids[start : start + body]])
        if self.transpose:
            lo, hi = piece.shifts
            shifted = self.tok.transpose(out, int(self.rng.integers(lo, hi + 1)))
            out = shifted if shifted is not None else out
        return out

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless (input_ids, labels) batches; padding is labelled -100 and ignored."""
        pad = self.tok.pad_id
        while True:
            rows = [self.window() for _ in range(batch_size)]
            ids = np.full((batch_size, self.length), pad, dtype=np.int64)
            labels = np.full((batch_size, self.length), -100, dtype=np.int64)
            for r, w in enumerate(rows):
                ids[r, : len(w)] = w
                labels[r, : len(w)] = w
            yield torch.from_numpy(ids), torch.from_numpy(labels)
