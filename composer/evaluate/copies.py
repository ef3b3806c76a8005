"""``composer eval copies``: the longest run of consecutive bars a generated piece shares with its
reference or with any training piece.

Two bars are identical when they have the same meter and the same notes: onset position, pitch
and duration, ignoring velocity, voice roles and control tokens, and up to one transposition
that holds for the whole run. Transposition-invariant because both things it guards against
move the music: priming transposes the excerpt to the request's key, and the model was trained
on every piece in up to 12 transpositions, so a copy comes out in whatever key was asked.
Empty bars never match (two bars of rest are not a copy).

Each bar is hashed as a multiset of (position, pitch above the bar's lowest, duration); the
training corpus (about 11M tokens) is hashed in one vectorised pass and sorted, so a query is a
binary search per bar and a run-length recurrence over the matches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.errors import ComposerError
from composer.progress import ProgressFn, no_progress
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import DURATION, PITCH, POSITION, TIMESIG

MAX_IDENTICAL_BARS = 2  # the acceptance rule: longer runs are copies
REFERENCES_FILE = "references.json"  # beside generated MIDI files: file name -> reference id


@dataclass
class BarTable:
    """Bars of many token streams: one row per bar, the bars of a stream consecutive."""

    hashes: np.ndarray  # (B,) uint64; 0 for a bar with no notes
    low: np.ndarray  # (B,) int64 lowest pitch in the bar
    stream: np.ndarray  # (B,) int64 index into ``names``
    first: np.ndarray  # (S,) index of each stream's first bar
    names: list[str]


def bar_table(tok: ScoreTokenizer, tokens: np.ndarray, starts: np.ndarray, names: list[str]):
    """Hash every bar of the streams ``tokens[starts[i]:starts[i+1]]`` (any token kinds; bars
    are found by their Bar tokens)."""
    ids = np.asarray(tokens).astype(np.int64)
    n = len(ids)
    kind = tok.kind[ids]
    bar_at = np.flatnonzero(ids == tok.bar_id)
    stream = np.searchsorted(np.asarray(starts), bar_at, "right") - 1
    bar_of = np.cumsum(ids == tok.bar_id) - 1  # (n,) bar index of each token (-1: before any)
    meter = np.zeros(len(bar_at), np.int64)
    nxt = np.minimum(bar_at + 1, n - 1)
    has_ts = kind[nxt] == TIMESIG
    meter[has_ts] = tok.value[ids[nxt[has_ts]]]
    # Last Position before each token: REMI writes one before every onset group of a bar.
    last_pos = np.maximum.accumulate(np.where(kind == POSITION, np.arange(n), 0))
    p = np.flatnonzero(kind == PITCH)
    p = p[(p + 2 < n) & (bar_of[p] >= 0)]
    p = p[kind[p + 2] == DURATION]  # Pitch Velocity Duration
    bar = bar_of[p]
    pitch = tok.value[ids[p]].astype(np.int64)
    dur = np.minimum(tok.ticks[ids[p + 2]], 255).astype(np.int64)
    pos = tok.value[ids[last_pos[p]]].astype(np.int64)
    # One entry per distinct (bar, position, pitch, duration): unison doublings count once.
    code = np.sort((bar << 32) | (pos << 16) | (pitch << 8) | dur)
    code = code[np.r_[True, code[1:] != code[:-1]]] if len(code) else code
    bar, pos = code >> 32, (code >> 16) & 0xFFFF
    pitch, dur = (code >> 8) & 0xFF, code & 0xFF
    nb = len(bar_at)
    low = np.full(nb, 255, np.int64)
    np.minimum.at(low, bar, pitch)
    rel = (pos << 16) | ((pitch - low[bar]) << 8) | dur
    sums = np.zeros(nb, np.uint64)
    np.add.at(sums, bar, _mix(rel.astype(np.uint64)))
    hashes = _mix(sums ^ _mix(meter.astype(np.uint64) + np.uint64(1)))
    hashes[np.bincount(bar, minlength=nb) == 0] = 0
    first = np.searchsorted(stream, np.arange(len(names)))
    return BarTable(hashes, low, stream.astype(np.int64), first, list(names))


@dataclass(frozen=True)
class CopyRun:
    """The longest run of identical bars between a generated piece and one source piece."""

    length: int
    source: str
    bar: int  # first bar of the run in the generated piece (0-based)
    source_bar: int  # first bar of the run in the source
    shift: int  # semitones from the source to the generated bars


class BarIndex:
    """Sorted bar hashes of a BarTable, for finding runs of identical bars."""

    def __init__(self, table: BarTable):
        self.table = table
        keep = np.flatnonzero(table.hashes != 0)
        order = np.argsort(table.hashes[keep], kind="stable")
        self.bars = keep[order]  # (K,) global bar numbers sorted by hash
        self.sorted = table.hashes[self.bars]

    def longest_run(self, query: BarTable, stream: int = 0) -> CopyRun | None:
        """The longest run of consecutive bars of ``query``'s stream ``stream`` that equals a run
        in this index under one transposition (None when no bar matches at all)."""
        t = self.table
        lo = query.first[stream]
        hi = query.first[stream + 1] if stream + 1 < len(query.first) else len(query.hashes)
        best: CopyRun | None = None
        prev_keys = np.zeros(0, np.int64)
        prev_runs = np.zeros(0, np.int64)
        for i in range(lo, hi):
            h = query.hashes[i]
            a = np.searchsorted(self.sorted, h, "left") if h else 0
            b = np.searchsorted(self.sorted, h, "right") if h else 0
            j = np.sort(self.bars[a:b])  # matching source bars, in bar order
            off = query.low[i] - t.low[j] + 128  # transposition, kept positive for the key
            keys = j * 256 + off
            want = keys - 256  # the previous bar of the source, same transposition
            if len(prev_keys):
                same = (j > 0) & (t.stream[np.maximum(j - 1, 0)] == t.stream[j])
                idx = np.minimum(np.searchsorted(prev_keys, want), len(prev_keys) - 1)
                runs = np.where(same & (prev_keys[idx] == want), prev_runs[idx] + 1, 1)
            else:
                runs = np.ones(len(j), np.int64)
            if len(runs):
                k = int(np.argmax(runs))
                if best is None or runs[k] > best.length:
                    start = int(j[k]) - int(runs[k]) + 1
                    best = CopyRun(
                        length=int(runs[k]),
                        source=t.names[int(t.stream[j[k]])],
                        bar=int(i - lo) - int(runs[k]) + 1,
                        source_bar=start - int(t.first[t.stream[j[k]]]),
                        shift=int(off[k]) - 128,
                    )
            order = np.argsort(keys, kind="stable")
            prev_keys, prev_runs = keys[order], runs[order]
        return best


@dataclass
class PieceCopies:
    name: str
    bars: int
    reference: str  # its reference's id ("" when none was given)
    vs_reference: CopyRun | None
    vs_training: CopyRun | None

    @property
    def longest(self) -> int:
        return max((r.length for r in (self.vs_reference, self.vs_training) if r), default=0)

    @property
    def ok(self) -> bool:
        return self.longest <= MAX_IDENTICAL_BARS


@dataclass
class CopiesReport:
    pieces: list[PieceCopies]
    training_pieces: int
    training_bars: int
    index_seconds: float
    query_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pieces)

    def table(self) -> str:
        """Per piece the longest run against its reference and against the training set."""

        def cell(r: CopyRun | None) -> str:
            if r is None:
                return "0"
            return f"{r.length} ({r.source} bar {r.source_bar + 1}, {r.shift:+d})"

        lines = [
            f"identical-bar runs (transposition-invariant; rule: at most {MAX_IDENTICAL_BARS})",
            f"training index: {self.training_pieces} pieces, {self.training_bars} bars, "
            f"built in {self.index_seconds:.2f} s; queries {self.query_seconds:.3f} s",
            *self.notes,
            "",
            f"{'piece':28s} {'bars':>4s}  {'vs reference':40s}  vs training",
        ]
        for p in self.pieces:
            mark = "" if p.ok else "  COPY"
            lines.append(
                f"{p.name:28s} {p.bars:4d}  {cell(p.vs_reference):40s}  {cell(p.vs_training)}{mark}"
            )
        runs = [p.longest for p in self.pieces]
        ref_runs = [p.vs_reference.length if p.vs_reference else 0 for p in self.pieces]
        tr_runs = [p.vs_training.length if p.vs_training else 0 for p in self.pieces]
        lines += [
            "",
            f"pieces: {len(runs)}; longest run vs reference {max(ref_runs, default=0)}, "
            f"vs training {max(tr_runs, default=0)}; mean longest {np.mean(runs or [0]):.2f}",
            f"within the rule: {sum(p.ok for p in self.pieces)}/{len(runs)} "
            f"({'PASS' if self.ok else 'FAIL'})",
        ]
        return "\n".join(lines)


def training_index(
    tok: ScoreTokenizer, cache_folder: str | Path, splits: tuple[str, ...] = ("train",)
) -> tuple[BarIndex, int]:
    """A BarIndex over the pieces of ``splits`` in a token cache; also the piece count."""
    from composer.train.data import TokenCache

    cache = TokenCache.load(cache_folder, tok)
    pieces = [p for p in cache.pieces if p.split in splits]
    parts = [np.asarray(cache.tokens[p.offset : p.offset + p.length]) for p in pieces]
    tokens = np.concatenate(parts) if parts else np.zeros(0, np.uint16)
    starts = np.cumsum([0] + [p.length for p in pieces[:-1]])
    return BarIndex(bar_table(tok, tokens, starts, [p.id for p in pieces])), len(pieces)


def single_table(tok: ScoreTokenizer, ids, name: str) -> BarTable:
    """The bars of one token stream."""
    return bar_table(tok, np.asarray(ids), np.array([0]), [name])


def midi_ids(tok: ScoreTokenizer, path: Path) -> list[int]:
    """A MIDI file as REMI tokens: every pitched track, its meters fitted to the vocabulary.

    Tracks become programs 0-5 in file order (roles are ignored when comparing bars)."""
    import symusic

    try:
        score = symusic.Score(str(path))
    except Exception as e:  # symusic raises RuntimeError and others for a damaged file
        raise ComposerError(path, f"not a readable MIDI file ({e})") from None
    score.tracks = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    for i, track in enumerate(score.tracks):
        track.program = i % len(tok.spec.roles)
    try:
        tok.fit_meters(score)
    except ValueError as e:
        raise ComposerError(path, str(e)) from None
    if not score.tracks:
        return []
    seq = tok.remi.encode(score)
    return list((seq[0] if isinstance(seq, list) else seq).ids)


def midi_files(paths: list[Path]) -> list[Path]:
    """MIDI files given, and those in given folders (sorted); ComposerError for a missing path."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".mid", ".midi"))
        elif p.is_file():
            out.append(p)
        else:
            raise ComposerError(p, "no such file or folder")
    if not out:
        raise ComposerError(paths[0] if paths else None, "no MIDI files found")
    return out


def eval_copies(
    paths: list[Path],
    *,
    reference: str | Path | None = None,
    cache: str | Path | None = None,
    tokenizer: ScoreTokenizer | None = None,
    progress: ProgressFn = no_progress,
) -> CopiesReport:
    """Longest identical-bar runs of each MIDI file against its reference and the training set.

    A file's reference is ``reference`` (``FILE[#N]``) if given, else the one named for it in a
    ``references.json`` beside it (written by ``composer eval priming``: file name -> token cache
    piece id), else none.
    """
    from composer.model.prime import load_reference
    from composer.tokens import TokenizerSpec

    tok = tokenizer or ScoreTokenizer.named(TokenizerSpec().name)
    files = midi_files(paths)
    start = time.perf_counter()
    index, n_train = training_index(tok, cache)
    built = time.perf_counter() - start
    given = load_reference(reference, tok) if reference else None
    named = _named_references(files)
    cache_refs = _cache_streams(tok, cache, {v for v in named.values()}) if named else {}
    query_time = 0.0
    out = []
    for n, f in enumerate(files):
        progress("copies", n, len(files))
        ids = midi_ids(tok, f)
        t0 = time.perf_counter()
        query = single_table(tok, ids, f.name)
        ref_name, ref_ids = "", None
        if given is not None:
            ref_name, ref_ids = given.id, given.ids
        elif f.name in named:
            ref_name = named[f.name]
            ref_ids = cache_refs.get(ref_name)
            if ref_ids is None:
                raise ComposerError(f.parent / REFERENCES_FILE, f"{ref_name} not in {cache}")
        vs_ref = None
        if ref_ids is not None:
            vs_ref = BarIndex(single_table(tok, ref_ids, ref_name)).longest_run(query)
        vs_train = index.longest_run(query)
        query_time += time.perf_counter() - t0
        out.append(PieceCopies(f.name, len(query.hashes), ref_name, vs_ref, vs_train))
    progress("copies", len(files), len(files))
    return CopiesReport(out, n_train, len(index.table.hashes), built, query_time)


def _named_references(files: list[Path]) -> dict[str, str]:
    names: dict[str, str] = {}
    for folder in sorted({f.parent for f in files}):
        path = folder / REFERENCES_FILE
        if path.exists():
            try:
                names.update(json.loads(path.read_text()))
            except ValueError as e:
                raise ComposerError(path, f"not valid JSON ({e})") from None
    return names


def _cache_streams(tok: ScoreTokenizer, cache: str | Path, ids: set[str]) -> dict[str, np.ndarray]:
    from composer.train.data import TokenCache

    data = TokenCache.load(cache, tok)
    return {p.id: data.ids(p) for p in data.pieces if p.id in ids}


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
