"""The training corpus: music21's bundled works, and a user's own files, as role-labelled scores.

Which files are read (``corpus_files``, ``iter_files``), each file's style family, duplicates
(a piece note for note equal to an earlier one is skipped) and the split of each piece. How one
score becomes a :class:`~composer.music.scores.CorpusPiece` is ``composer.music.scores``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from music21 import common, stream

from composer.errors import ComposerError
from composer.music.m21 import music21_converter
from composer.music.scores import (
    FORMATS,
    USER_STYLE,
    CorpusPiece,
    from_midi,
    from_music21,
)
from composer.progress import ProgressFn, no_progress

# Keys are a collection (a top folder of music21's corpus) or a path prefix inside one; the
# longest matching key wins. Trecento, Ciconia and Zacara da Teramo (luca) are 14th-century ars
# nova: other cadences (double leading notes), rhythm and part writing than 16th-century
# polyphony, so they get their own family instead of diluting "renaissance".
STYLE_OF_COLLECTION: dict[str, str] = {
    "bach": "chorale",
    "palestrina": "renaissance",
    "monteverdi": "renaissance",
    "josquin": "renaissance",
    "lusitano": "renaissance",
    "trecento": "medieval",
    "ciconia": "medieval",
    "luca": "medieval",
    "haydn": "quartet",
    "mozart": "quartet",
    "mozart/k545": "piano",  # a piano sonata among Mozart's quartets
    "beethoven": "quartet",
    "schumann_robert/opus41no1": "quartet",
    "essenFolksong": "folk",
    "miscFolk": "folk",
    "ryansMammoth": "fiddle",
    "oneills1850": "fiddle",
    "airdsAirs": "fiddle",
    "nottingham-dataset": "fiddle",
    # Solo keyboard works only: songs with piano and chamber music with piano stay "other".
    "chopin": "piano",
    "joplin": "piano",
    "cpebach": "piano",
    "schoenberg": "piano",
    "verdi": "piano",  # La donna e mobile, arranged for piano alone
    "schumann_clara/polonaise": "piano",
}
OTHER_STYLE = "other"

# Not music to learn from: test and demonstration files, and the Essen test sets.
_EXCLUDED = ("demos", "theoryExercises", "essenFolksong/test")
_MIDI = (".mid", ".midi")
# ABC files that hold one voice per tune (X:), to be merged into one score.
_VOICE_PER_TUNE = ("josquin",)
# Collections whose X: numbers are the tune numbers of the printed book.
_BOOK_NUMBERED = ("oneills1850",)

_STYLE_NAME = re.compile(r"[A-Za-z0-9-]+")


@dataclass
class SkippedPiece:
    """A piece that was not converted, with the reason (a duplicate, or the error)."""

    id: str
    reason: str


def style_of(rel_path: str) -> str:
    """The style family of a corpus path such as ``"mozart/k545/movement1.mxl"``."""
    # A bare collection matches its folder; a longer key such as "schumann_clara/polonaise"
    # matches file names too.
    keys = [k for k in STYLE_OF_COLLECTION if rel_path.startswith(k if "/" in k else k + "/")]
    return STYLE_OF_COLLECTION[max(keys, key=len)] if keys else OTHER_STYLE


def corpus_files(collections: Iterable[str] | None = None) -> list[tuple[str, Path]]:
    """(relative path, path) of every score file of music21's corpus used here, sorted.

    Analyses (``.rntxt``), demonstration and test files are left out, and of a work stored in
    several formats only the first of ``FORMATS`` is listed.
    """
    root = Path(common.getCorpusFilePath())
    wanted = None if collections is None else set(collections)
    found: dict[str, Path] = {}
    for path in root.rglob("*"):
        if path.suffix not in FORMATS or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel.startswith(_EXCLUDED) or (wanted is not None and rel.split("/")[0] not in wanted):
            continue
        stem = rel[: -len(path.suffix)]
        kept = found.get(stem)
        if kept is None or FORMATS.index(path.suffix) < FORMATS.index(kept.suffix):
            found[stem] = path
    if wanted is not None:
        missing = wanted - {rel.split("/")[0] for rel in found}
        if missing:
            raise ValueError(f"no such corpus collection: {', '.join(sorted(missing))}")
    return sorted((p.relative_to(root).as_posix(), p) for p in found.values())


def iter_corpus(
    collections: Iterable[str] | None = None,
    progress: ProgressFn | None = None,
    limit: int | None = None,
    *,
    expand_repeats: bool = True,
    workers: int = 1,
) -> Iterator[CorpusPiece | SkippedPiece]:
    """Every piece of music21's corpus (or of the named collections), in a fixed order.

    Files go in sorted path order and the tunes of a multi-tune ABC file in their order in it;
    ``limit`` stops after that many pieces. A piece that fails, or repeats an earlier one note
    for note, comes back as a :class:`SkippedPiece`. ``workers`` > 1 parses files in that many
    processes; the pieces come back in the same order either way.
    """
    progress = progress or no_progress
    files = corpus_files(collections)
    jobs = [(path, rel, rel.split("/")[0], style_of(rel), expand_repeats) for rel, path in files]
    seen: dict[str, str] = {}
    made = 0
    with _file_mapper(workers) as mapper:
        for done, items in enumerate(mapper(_file_items, jobs)):
            progress("corpus", done, len(files))
            for item in items:
                # Duplicates are judged here, in file order, so the result does not depend on
                # how many workers parsed the files.
                item = _unless_duplicate(item, seen)
                yield item
                made += isinstance(item, CorpusPiece)
                if limit is not None and made >= limit:
                    return
    progress("corpus", len(files), len(files))


def _file_items(job: tuple) -> list[CorpusPiece | SkippedPiece]:
    return list(_pieces_of_file(*job))


@contextlib.contextmanager
def _file_mapper(workers: int) -> Iterator[Callable]:
    """An ordered map over files: in this process, or in a pool of ``workers`` processes."""
    if workers <= 1:
        yield map
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield lambda fn, jobs: pool.imap(fn, jobs, chunksize=2)


def iter_files(
    paths: Iterable[str | Path],
    style: str = USER_STYLE,
    progress: ProgressFn | None = None,
    *,
    expand_repeats: bool = True,
) -> Iterator[CorpusPiece | SkippedPiece]:
    """Pieces from a user's files and folders: MIDI, MusicXML, ABC and Humdrum.

    Folders are searched recursively, in sorted order. A piece's collection is the name of the
    folder given (or of a given file's folder), and its id that name plus the path inside.
    """
    if not _STYLE_NAME.fullmatch(style):
        raise ValueError(f"style {style!r}: use letters, digits and hyphens only")
    progress = progress or no_progress
    files: list[tuple[str, str, Path]] = []
    for given in (Path(p).resolve() for p in paths):
        base = given if given.is_dir() else given.parent
        found = sorted(given.rglob("*")) if given.is_dir() else [given]
        for path in found:
            if path.is_file() and path.suffix.lower() in FORMATS + _MIDI:
                rel = path.relative_to(base.parent).as_posix()
                files.append((rel, base.name, path))
    seen: dict[str, str] = {}
    for done, (rel, collection, path) in enumerate(files):
        progress("corpus", done, len(files))
        if path.suffix.lower() in _MIDI:
            items: Iterable[CorpusPiece | SkippedPiece] = [
                _midi_piece(path, rel, collection, style)
            ]
        else:
            items = _pieces_of_file(path, rel, collection, style, expand_repeats)
        for item in items:
            yield _unless_duplicate(item, seen)
    progress("corpus", len(files), len(files))


def parse_file(
    path: Path,
    rel: str,
    collection: str,
    style: str = USER_STYLE,
    seen: dict[str, str] | None = None,
    *,
    expand_repeats: bool = True,
) -> list[CorpusPiece | SkippedPiece]:
    """The pieces of one file (MIDI or score) as ``iter_corpus`` and ``iter_files`` make them.

    ``seen`` maps identities (:func:`piece_identities`) to piece ids: pieces found there come
    back skipped as duplicates, and the new ones are added. None: no duplicate check.
    """
    if path.suffix.lower() in _MIDI:
        items = [_midi_piece(path, rel, collection, style)]
    else:
        items = list(_pieces_of_file(path, rel, collection, style, expand_repeats))
    return items if seen is None else [_unless_duplicate(item, seen) for item in items]


def piece_identities(piece: CorpusPiece) -> list[str]:
    """The keys under which a later piece counts as a duplicate of this one."""
    return _identities(piece)


def split_of(piece_id: str, seed: int = 0, val: float = 0.05, test: float = 0.05) -> str:
    """The split a piece belongs to ("train", "val" or "test"), fixed by a hash of (seed, id).

    One piece at a time: the retrieval library splits its pieces this way. The token cache
    tops small styles up with ``assign_splits``."""
    u = _unit_hash(piece_id, seed)
    return "test" if u < test else "val" if u < test + val else "train"


def assign_splits(
    pieces: Sequence[tuple[str, str]],
    seed: int = 0,
    val: float = 0.05,
    test: float = 0.05,
    min_held_out: int = 10,
) -> list[str]:
    """The split of each (piece id, style): ``split_of``, then topped up per style so that each
    of val and test holds at least ``min(min_held_out, n // 8)`` of a style's n pieces.

    A hash alone gives a 99-piece style 2 val and 2 test pieces, too few to measure it on; the
    top-up takes the style's train pieces whose hash lies nearest above the held-out share, so
    a style's split depends only on its own pieces, and large styles keep exactly the split
    that ``split_of`` gives."""
    splits = [split_of(pid, seed, val, test) for pid, _ in pieces]
    by_style: dict[str, list[int]] = {}
    for i, (_, style) in enumerate(pieces):
        by_style.setdefault(style, []).append(i)
    for members in by_style.values():
        want = min(min_held_out, len(members) // 8)
        # The style's train pieces in hash order; test is topped up first, then val.
        spare = sorted(
            (i for i in members if splits[i] == "train"),
            key=lambda i: (_unit_hash(pieces[i][0], seed), pieces[i][0]),
        )
        for name in ("test", "val"):
            missing = want - sum(splits[i] == name for i in members)
            for i in spare[: max(0, missing)]:
                splits[i] = name
            spare = spare[max(0, missing) :]
    return splits


def _unit_hash(piece_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\0{piece_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- files and opuses ------------------------------------------------------------------------


def _pieces_of_file(
    path: Path, rel: str, collection: str, style: str, expand_repeats: bool
) -> Iterator[CorpusPiece | SkippedPiece]:
    """The pieces of one score file; an ABC opus is parsed once for all its tunes."""
    try:
        parsed = music21_converter().parse(path)
        if isinstance(parsed, stream.Opus) and collection in _VOICE_PER_TUNE:
            parsed = parsed.mergeScores()
    except Exception as exc:  # a parser error of any kind skips the file, never the run
        yield SkippedPiece(rel, f"cannot be read as a score ({_reason(exc)})")
        return
    if isinstance(parsed, stream.Opus):
        tunes = [(f"{rel}#{_tune_number(s, i)}", s) for i, s in enumerate(parsed.scores)]
    else:
        tunes = [(rel, parsed)]
    ids: set[str] = set()
    for piece_id, score in tunes:
        while piece_id in ids:  # an opus may reuse an X: number
            piece_id += "'"
        ids.add(piece_id)
        try:
            yield from_music21(
                score, piece_id, collection=collection, style=style, expand_repeats=expand_repeats
            )
        except Exception as exc:
            yield SkippedPiece(piece_id, _reason(exc))


def _reason(exc: Exception) -> str:
    """A parser's complaint in a line: its first line, without the exception's class name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _tune_number(score: stream.Score, index: int) -> str:
    number = score.metadata.number if score.metadata is not None else None
    return str(number) if number not in (None, "") else str(index + 1)


def _unless_duplicate(
    item: CorpusPiece | SkippedPiece, seen: dict[str, str]
) -> CorpusPiece | SkippedPiece:
    """Skip a piece seen before (``seen`` maps identities to the first piece's id)."""
    if isinstance(item, SkippedPiece):
        return item
    keys = _identities(item)
    for k in keys:
        if k in seen:
            return SkippedPiece(item.id, f"duplicate of {seen[k]}")
    for k in keys:
        seen[k] = item.id
    return item


def _identities(piece: CorpusPiece) -> list[str]:
    """A piece is a duplicate if its notes equal an earlier piece's, or, in a collection whose
    tunes carry the book's numbers (O'Neill's overlapping files, transcribed by different
    people), if its number and title do."""
    digest = hashlib.sha1()
    for track in piece.score.tracks:
        notes = track.notes.numpy()
        digest.update(bytes([track.program]))
        for column in ("time", "duration", "pitch"):
            digest.update(notes[column].tobytes())
    keys = [digest.hexdigest()]
    if piece.collection in _BOOK_NUMBERED and "#" in piece.id:
        plain = re.sub(r"[^a-z]|\bthe\b", "", piece.title.lower())
        keys.append(f"{piece.collection}#{piece.id.rsplit('#', 1)[1]}#{plain}")
    return keys


def _midi_piece(path: Path, rel: str, collection: str, style: str) -> CorpusPiece | SkippedPiece:
    try:
        return from_midi(path, rel, collection, style)
    except ComposerError as exc:  # read_score's words for a damaged file
        return SkippedPiece(rel, exc.problem)
    except Exception as exc:  # a broken file is skipped, never the run
        return SkippedPiece(rel, _reason(exc))
