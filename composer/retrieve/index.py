"""Build or update a library from music21's corpus or a user's files (``composer index``).

Incremental by content hash: a file whose bytes are unchanged is not parsed again. A file
that fails (or a piece in it) is listed with the reason and skipped; the run goes on. The
library is saved every ``save_every_s`` seconds and at the end, so an interrupted run keeps
what it made and the next run goes on from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.errors import ComposerError
from composer.progress import ProgressFn, log, no_progress
from composer.retrieve.features import symbolic_features
from composer.retrieve.library import (
    DEFAULT_LIBRARY,
    LIBRARY_FILE,
    MUSIC21,
    FileRecord,
    Library,
    PieceMeta,
)
from composer.retrieve.text import COMPOSERS, composer_name, describe

_SCORES = (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid", ".midi")


@dataclass(frozen=True)
class IndexConfig:
    """How pieces are read and embedded; saved inside the library."""

    style: str = "user"  # style family given to a user's files (the corpus has its own)
    expand_repeats: bool = True  # index the music as played
    batch: int = 64  # descriptions embedded at once
    save_every_s: float = 120.0  # seconds between saves during a long run


@dataclass(frozen=True)
class IndexReport:
    """What one ``index`` run did."""

    library: str
    files: int  # files found under the given paths
    indexed: int  # files parsed this run (new or changed)
    unchanged: int  # files skipped: same content hash as indexed before
    removed_files: int  # files indexed before that are gone
    pieces_added: int
    pieces_removed: int
    pieces_total: int
    duplicates: int  # pieces skipped: note for note the same as another piece
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file or piece, reason)
    seconds: float = 0.0
    size_bytes: int = 0

    @property
    def rate(self) -> float:
        """Pieces indexed per second of wall time."""
        return self.pieces_added / self.seconds if self.seconds > 0 else 0.0


def index(
    paths: Sequence[str | Path] | None = None,
    library: str | Path = DEFAULT_LIBRARY,
    *,
    config: IndexConfig | None = None,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
) -> IndexReport:
    """Index ``paths`` (files and folders; None: music21's corpus) into the library folder.

    ``rebuild`` starts from an empty library instead of the one in the folder (needed when
    the folder holds one made by another embedding model or feature layout).
    """
    config = config or IndexConfig()
    progress = progress or no_progress
    started = time.perf_counter()
    folder = Path(library)
    if rebuild or not (folder / LIBRARY_FILE).exists():
        lib = Library(folder, config=dataclasses.asdict(config))
        dirty = True
    else:
        lib = Library.open(folder)
        dirty = lib.config != dataclasses.asdict(config)
        lib.config = dataclasses.asdict(config)
    jobs, roots = _corpus_jobs() if paths is None else _file_jobs(paths, config.style)

    found = {job.key for job in jobs}
    gone = {k for k in lib.files if k not in found and any(_under(k, r) for r in roots)}
    removed = lib.drop_files(gone)
    seen = {ident: p.id for p in lib.pieces for ident in p.identities}
    builder = _Builder(lib, config)
    bundle = _corpus_metadata() if paths is None else {}
    indexed = unchanged = duplicates = 0
    bad: list[tuple[str, str]] = []
    last_save = time.perf_counter()
    for done, job in enumerate(jobs):
        progress("index", done, len(jobs))
        try:
            digest = hashlib.sha256(job.path.read_bytes()).hexdigest()
        except OSError as e:
            bad.append((str(job.path), f"unreadable: {e.strerror or e}"))
            continue
        old = lib.files.get(job.key)
        if old is not None and old.hash == digest:
            unchanged += 1
            # Still bad: listed again, so a re-run does not hide them.
            bad += [(k, r) for k, r in old.skipped.items() if not r.startswith("duplicate of")]
            continue
        if old is not None:
            old_ids = set(old.pieces)
            seen = {k: v for k, v in seen.items() if v not in old_ids}
            removed += lib.drop_files({job.key})
        indexed += 1
        record = _index_file(job, digest, config, seen, bundle, builder)
        duplicates += sum(r.startswith("duplicate of") for r in record.skipped.values())
        bad += [(k, r) for k, r in record.skipped.items() if not r.startswith("duplicate of")]
        lib.files[job.key] = record
        if time.perf_counter() - last_save > config.save_every_s:
            builder.flush()
            lib.save()
            last_save = time.perf_counter()
    progress("index", len(jobs), len(jobs))
    builder.flush()
    if dirty or indexed or removed:  # an unchanged library is not rewritten
        lib.save()
    return IndexReport(
        library=str(folder),
        files=len(jobs),
        indexed=indexed,
        unchanged=unchanged,
        removed_files=len(gone),
        pieces_added=builder.added,
        pieces_removed=removed,
        pieces_total=len(lib),
        duplicates=duplicates,
        bad=bad,
        seconds=time.perf_counter() - started,
        size_bytes=lib.path.stat().st_size,
    )


def _index_file(
    job: _Job,
    digest: str,
    config: IndexConfig,
    seen: dict[str, str],
    bundle: dict,
    builder: _Builder,
) -> FileRecord:
    """Parse one file and hand its pieces to ``builder``; the record lists what was skipped."""
    from composer.music.corpus import SkippedPiece, parse_file  # music21 loads slowly

    record = FileRecord(digest)
    items = parse_file(
        job.path, job.rel, job.collection, job.style, seen, expand_repeats=config.expand_repeats
    )
    for item in items:
        if isinstance(item, SkippedPiece):
            record.skipped[item.id] = item.reason
            continue
        try:
            meta, feats = _entry(item, job, bundle)
        except Exception as e:  # one odd piece never stops the run
            record.skipped[item.id] = f"{type(e).__name__}: {e}"[:300]
            continue
        record.pieces.append(meta.id)
        builder.add(meta, feats)
    return record


@dataclass(frozen=True)
class _Job:
    key: str  # FileRecord key: "music21:<rel>" or the absolute path
    path: Path
    rel: str  # the id prefix of its pieces
    collection: str
    style: str
    source: str


class _Builder:
    """Collects new pieces and embeds their descriptions in batches."""

    def __init__(self, lib: Library, config: IndexConfig):
        self.lib, self.config = lib, config
        self.metas: list[PieceMeta] = []
        self.feats: list[np.ndarray] = []
        self.embedded: list[np.ndarray] = []
        self.added = 0
        self._model = None

    def add(self, meta: PieceMeta, feats: np.ndarray) -> None:
        self.metas.append(meta)
        self.feats.append(feats)
        if len(self.metas) - sum(len(e) for e in self.embedded) >= self.config.batch:
            self._embed()

    def _embed(self) -> None:
        start = sum(len(e) for e in self.embedded)
        texts = [m.description for m in self.metas[start:]]
        if not texts:
            return
        if self._model is None:
            from composer.music.words import sentence_model

            self._model = sentence_model()
        vectors = self._model.encode(texts, batch_size=self.config.batch, normalize_embeddings=True)
        self.embedded.append(np.asarray(vectors, np.float32))

    def flush(self) -> None:
        """Put everything collected so far into the library."""
        self._embed()
        if self.metas:
            self.lib.extend(self.metas, np.concatenate(self.embedded), np.stack(self.feats))
            self.added += len(self.metas)
        self.metas, self.feats, self.embedded = [], [], []


def _corpus_jobs() -> tuple[list[_Job], list[str]]:
    from composer.music.corpus import corpus_files, style_of

    jobs = [
        _Job(f"{MUSIC21}:{rel}", path, rel, rel.split("/")[0], style_of(rel), MUSIC21)
        for rel, path in corpus_files()
    ]
    return jobs, [f"{MUSIC21}:"]


def _file_jobs(paths: Sequence[str | Path], style: str) -> tuple[list[_Job], list[str]]:
    """Files under ``paths`` as ``iter_files`` finds them (ids: folder name + path inside)."""
    jobs, roots = [], []
    for given in (Path(p).expanduser().resolve() for p in paths):
        if not given.exists():
            raise ComposerError(given, "no such file or folder")
        base = given if given.is_dir() else given.parent
        found = sorted(given.rglob("*")) if given.is_dir() else [given]
        roots.append(str(given) + ("/" if given.is_dir() else ""))
        for path in found:
            if path.is_file() and path.suffix.lower() in _SCORES:
                rel = path.relative_to(base.parent).as_posix()
                jobs.append(_Job(str(path), path, rel, base.name, style, "file"))
    return jobs, roots


def _under(key: str, root: str) -> bool:
    return key.startswith(root) if root.endswith(("/", ":")) else key == root


def _entry(piece, job: _Job, bundle: dict) -> tuple[PieceMeta, np.ndarray]:
    """The metadata (with its description) and the feature vector of one parsed piece."""
    from composer.music.corpus import piece_identities
    from composer.music.midi import read_score
    from composer.music.scores import bar_lines

    score = piece.score
    end = score.end()
    bars = max(1, len(bar_lines(piece.meters, end)))
    bounds = [t for t, _, _ in piece.meters[1:]] + [max(end, piece.meters[-1][0])]
    lasting = max(zip(piece.meters, bounds, strict=True), key=lambda mb: mb[1] - mb[0][0])[0]
    tempos = list(score.tempos)
    qpm = float(tempos[0].qpm) if tempos else 120.0
    tune = piece.id[len(job.rel) + 1 :] if len(piece.id) > len(job.rel) else ""
    md = bundle.get((job.rel, tune.rstrip("'"))) or bundle.get((job.rel, ""))
    title = piece.title
    if title == piece.id:  # no title in the file: its name reads better than the id
        title = Path(job.rel).stem.replace("_", " ")
    programs: tuple[int, ...] = ()
    if job.path.suffix.lower() in (".mid", ".midi"):
        midi = read_score(job.path)
        programs = tuple(t.program for t in midi.tracks if not t.is_drum and len(t.notes))
    meta = PieceMeta(
        id=piece.id,
        source=job.source,
        path=job.rel if job.source == MUSIC21 else str(job.path),
        tune=tune,
        title=_tidy(title),
        work=_tidy(getattr(md, "parentTitle", None) or ""),
        composer=(COMPOSERS.get(job.collection) if job.source == MUSIC21 else None)
        or composer_name(getattr(md, "composer", None)),
        collection=job.collection,
        place=_place(md),
        style=job.style,
        tonic=int(piece.key_tonic),
        mode=piece.key_mode,
        meter=f"{lasting[1]}/{lasting[2]}",
        tempo=round(qpm, 2),
        # The corpus loader puts MIDI's 120 at the start when the score has no mark.
        tempo_marked=bool(programs) or len(tempos) > 1 or abs(qpm - 120.0) > 1e-6,
        parts=int(piece.n_parts),
        programs=programs,
        bars=bars,
        seconds=round(float(score.to("second").end()), 2),
        density=round(piece.n_notes / bars, 2),
        description="",
        identities=tuple(piece_identities(piece)),
    )
    meta = dataclasses.replace(meta, description=describe(meta))
    return meta, symbolic_features(score)


def _tidy(name: str) -> str:
    """One line, no final full stop ("The blind Sailor." -> "The blind Sailor")."""
    name = " ".join(str(name).split())
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name


def _place(md) -> str:
    """The last part of music21's locale ("Europa, Mitteleuropa, Deutschland" -> Deutschland)."""
    locale = getattr(md, "localeOfComposition", None) if md is not None else None
    return str(locale).split(",")[-1].strip() if locale else ""


def _corpus_metadata() -> dict[tuple[str, str], object]:
    """music21's metadata bundle of its corpus, by (path, tune number): composers and places
    that the parsed scores do not carry. Empty when the bundle cannot be read."""
    try:
        from music21 import corpus

        bundle = corpus.corpora.CoreCorpus().metadataBundle
        entries = list(bundle._metadataEntries.values())
    except Exception as e:  # the bundle only adds names; indexing goes on without it
        log.warning("music21 metadata bundle unreadable (%s): no composers or places", e)
        return {}
    out: dict[tuple[str, str], object] = {}
    for entry in entries:
        if entry.metadata is None:
            continue
        path = str(entry.sourcePath).replace("\\", "/")
        number = entry.metadata.number
        out.setdefault((path, str(number) if number not in (None, "") else ""), entry.metadata)
        out.setdefault((path, ""), entry.metadata)  # for a file whose number does not match
    return out
