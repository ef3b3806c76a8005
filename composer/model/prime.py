"""Priming the decoder with a reference: a short excerpt in the request's key and meter, or,
where the meters differ, the reference's per-bar intensity pattern.

The excerpt is ``bars`` consecutive bars of the reference in the request's meter, the window
whose symbolic features are nearest the whole piece's (its most characteristic bars, rather than
a pickup or the final cadence). It keeps the control tokens measured from its own notes, in the
layout the grammar writes (Bar TimeSig [Section] Intensity [Hit] notes), because that is the
pairing the model saw in training; the request's controls start with the first generated bar.
It is transposed by the shift between the two keys (to the relative key where the modes differ,
so the excerpt's scale is the request's scale), in the octave nearest its own register that
keeps every pitch in range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.errors import ComposerError
from composer.paths import DEFAULT_LIBRARY
from composer.progress import log
from composer.retrieve.features import feature_distance, symbolic_features
from composer.retrieve.library import MUSIC21, PieceMeta, load_piece
from composer.retrieve.search import search
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import HEADER, KEY, STYLE
from composer.types import GenerationRequest, References

PRIMER_BARS = 2
# A piece is re-parsed from its file to prime the decoder. A tune of an ABC collection is parsed
# alone (library.load_piece); other files this large would cost more than the decoding, so their
# pieces do not prime.
_MAX_PRIMING_FILE = 256_000  # bytes


@dataclass(frozen=True)
class Reference:
    """A reference piece as composer tokens: BOS Style Key, bars with their measured controls,
    EOS (the form ``ScoreTokenizer.encode`` and the token cache give)."""

    id: str
    style: str
    key: tuple[int, str]
    ids: tuple[int, ...]

    def bar_slices(self, tok: ScoreTokenizer) -> list[tuple[int, int]]:
        """(start, stop) into ``ids`` of every bar, the EOS excluded."""
        ids = np.asarray(self.ids)
        starts = np.flatnonzero(ids == tok.bar_id).tolist()
        end = len(ids) - 1 if len(ids) and ids[-1] == tok.eos_id else len(ids)
        return list(zip(starts, starts[1:] + [end], strict=True))


@dataclass(frozen=True)
class Priming:
    """What priming did: an excerpt (its bars and shift) or controls only, and why."""

    reference: str
    mode: str  # "excerpt" or "controls"
    reason: str
    bars: tuple[int, ...] = ()  # reference bar indices of the excerpt (0-based)
    shift: int = 0  # semitones the excerpt was transposed by
    primer: tuple[int, ...] = ()  # the excerpt's tokens, in the request's key
    intensity: tuple[int, ...] = ()  # controls mode: the reference's per-bar intensity

    def apply(self, req: GenerationRequest) -> GenerationRequest:
        """``req`` with the primer, or with the reference's intensity pattern in its controls."""
        if self.mode == "excerpt":
            return dataclasses.replace(req, primer=self.primer)
        pattern = self.intensity or (1,)
        controls = tuple(
            dataclasses.replace(c, intensity=pattern[i % len(pattern)])
            for i, c in enumerate(req.controls)
        )
        return dataclasses.replace(req, controls=controls, primer=())

    def describe(self) -> str:
        """One line for the user."""
        if self.mode == "excerpt":
            first, last = self.bars[0] + 1, self.bars[-1] + 1
            return (
                f"primed with bars {first}-{last} of {self.reference}, "
                f"transposed {self.shift:+d} semitones ({self.reason})"
            )
        return f"primed with the intensity pattern of {self.reference} ({self.reason})"


def reference_from_ids(piece_id: str, ids, tok: ScoreTokenizer) -> Reference:
    """A Reference from an encoded stream (a token cache piece): style and key from its header."""
    ids = tuple(int(i) for i in ids)
    if len(ids) < HEADER or tok.kind[ids[1]] != STYLE or tok.kind[ids[2]] != KEY:
        raise ComposerError(piece_id, "not an encoded piece (no BOS Style Key header)")
    return Reference(piece_id, *tok.read_header(ids), ids)


def reference_from_piece(piece, tok: ScoreTokenizer) -> Reference:
    """Encode a CorpusPiece (its meters fitted to the vocabulary) as a Reference."""
    score = piece.score.copy()
    try:
        tok.fit_meters(score)
    except ValueError as e:
        raise ComposerError(piece.id, str(e)) from None
    style = piece.style if piece.style in tok.spec.styles else "other"
    key = (piece.key_tonic, piece.key_mode)
    ids = tok.encode(score, style, key, piece.section_starts)
    return Reference(piece.id, style, key, tuple(ids))


def load_reference(spec: str | Path, tok: ScoreTokenizer) -> Reference:
    """``FILE`` or ``FILE#N`` (tune N of a multi-tune ABC file) read with the corpus loaders."""
    from composer.music.corpus import SkippedPiece, iter_files
    from composer.music.scores import CorpusPiece

    path, tune = Path(spec), None
    if not path.exists() and "#" in str(spec):
        head, _, tune = str(spec).rpartition("#")
        path = Path(head)
    if not path.is_file():
        raise ComposerError(path, "no such reference file")
    items = list(iter_files([path]))
    pieces = [p for p in items if isinstance(p, CorpusPiece)]
    if tune is not None:
        pieces = [p for p in pieces if p.id.rsplit("#", 1)[-1] == tune]
        if not pieces:
            numbers = [p.id.rsplit("#", 1)[-1] for p in items if "#" in p.id]
            have = f"tunes {', '.join(numbers[:20])}" if numbers else "one piece: drop #N"
            raise ComposerError(path, f"no tune #{tune} (the file holds {have})")
    if not pieces:
        why = "; ".join(p.reason for p in items if isinstance(p, SkippedPiece)) or "no music"
        raise ComposerError(path, f"not usable as a reference ({why})")
    return reference_from_piece(pieces[0], tok)


def plan_priming(
    req: GenerationRequest, ref: Reference, tok: ScoreTokenizer, bars: int = PRIMER_BARS
) -> Priming:
    """Choose how ``ref`` primes ``req`` (see the module docstring)."""
    slices = ref.bar_slices(tok)
    ids = np.asarray(ref.ids, dtype=np.int64)
    info = tok.bars(list(ref.ids))  # one dict per bar, in the order of ``slices``
    meters = [b["meter"] for b in info]
    meter = tuple(req.meter)
    windows = [
        s
        for s in range(len(slices) - bars + 1)
        if all(meters[s + j] == meter and info[s + j]["onsets"] for j in range(bars))
    ]
    if not windows:
        have = sorted({f"{m[0]}/{m[1]}" for m in meters if m})
        why = (
            f"no {bars} bars with notes in {meter[0]}/{meter[1]}; the reference is in "
            + ", ".join(have)
        )
        return _controls_only(ref, info, req, why)
    shift = _shift(ref.key, req.key)
    start = _characteristic(ids, slices, windows, bars, tok)
    excerpt = ids[slices[start][0] : slices[start + bars - 1][1]]
    for k in sorted((shift, shift - 12), key=abs):
        moved = tok.transpose(excerpt, k)
        if moved is not None:
            modes = "" if ref.key[1] == req.key[1] else ", via the relative key"
            return Priming(
                ref.id,
                "excerpt",
                f"meter {meter[0]}/{meter[1]} matches{modes}",
                bars=tuple(range(start, start + bars)),
                shift=k,
                primer=tuple(int(i) for i in moved),
            )
    return _controls_only(ref, info, req, "no octave keeps the excerpt in the pitch range")


def prime(
    req: GenerationRequest, piece, tokenizer: ScoreTokenizer, bars: int = PRIMER_BARS
) -> GenerationRequest:
    """``req`` primed by ``piece`` (a Reference or a CorpusPiece)."""
    ref = piece if isinstance(piece, Reference) else reference_from_piece(piece, tokenizer)
    return plan_priming(req, ref, tokenizer, bars).apply(req)


def prime_from(
    req: GenerationRequest, references: References, tok: ScoreTokenizer
) -> tuple[GenerationRequest, str]:
    """``req`` primed by the first of the references' picks in its mode with bars in its meter,
    and what priming did (a line for plan.json)."""
    if not references.pieces:
        return req, references.priming or "no reference piece was found"
    for meta in references.pieces:
        ref = _reference(meta, tok)
        if ref is None or ref.key[1] != req.key[1]:
            continue  # a major excerpt moved to the relative major would pull a minor plan there
        how = plan_priming(req, ref, tok)
        if how.mode == "excerpt":
            return how.apply(req), how.describe()
    return req, "none of the picks has bars in the plan's meter and mode"


def best_reference(
    req: GenerationRequest, tempo: float, tok: ScoreTokenizer, library=DEFAULT_LIBRARY
) -> tuple[PieceMeta, Reference] | None:
    """The library's best piece for ``req`` (its style, key, meter and ``tempo``) that has bars
    in its meter, as (library entry, Reference); None when no piece has."""
    hits = search(
        library, "", key=req.key, style=req.style, meter="{}/{}".format(*req.meter),
        tempo=tempo, k=10,
    )  # fmt: skip
    for hit in hits:
        ref = _reference(hit.piece, tok)
        if ref is None or ref.key[1] != req.key[1]:
            continue  # see prime_from
        if plan_priming(req, ref, tok).mode == "excerpt":
            return hit.piece, ref
    return None


def _reference(meta: PieceMeta, tok: ScoreTokenizer) -> Reference | None:
    """The library piece ``meta`` as a Reference, or None when its file is gone, too slow to
    parse here, or cannot be encoded."""
    from music21 import common

    path = (
        Path(common.getCorpusFilePath()) / meta.path if meta.source == MUSIC21 else Path(meta.path)
    )
    if not path.is_file():
        return None
    single_tune = path.suffix.lower() == ".abc" and meta.tune.isdigit()  # parsed alone: fast
    if not single_tune and path.stat().st_size > _MAX_PRIMING_FILE:
        return None
    try:
        return reference_from_piece(load_piece(meta), tok)
    except (ComposerError, ValueError) as e:
        log.warning("reference %s: %s", meta.id, e)
        return None


def _shift(source: tuple[int, str], target: tuple[int, str]) -> int:
    """Semitones (0..11) from ``source`` to ``target``, through the relative key where the
    modes differ (A minor to C major: 0)."""
    tonic = source[0]
    if source[1] != target[1]:
        tonic += 3 if source[1] == "minor" else -3
    return (target[0] - tonic) % 12


def _characteristic(
    ids: np.ndarray,
    slices: list[tuple[int, int]],
    windows: list[int],
    bars: int,
    tok: ScoreTokenizer,
) -> int:
    """The window whose features are nearest the whole piece's (the earliest on a tie); the
    last bars are left out where there is a choice: a final cadence invites ending."""
    inner = [s for s in windows if s + bars < len(slices)] or windows
    if len(inner) == 1:
        return inner[0]
    whole = symbolic_features(tok.decode(ids[slices[0][0] : slices[-1][1]].tolist()))
    best, best_d = inner[0], np.inf
    for s in inner:
        part = ids[slices[s][0] : slices[s + bars - 1][1]].tolist()
        d = feature_distance(symbolic_features(tok.decode(part)), whole)
        if d < best_d - 1e-9:
            best, best_d = s, d
    return best


def _controls_only(ref: Reference, info: list[dict], req: GenerationRequest, why: str) -> Priming:
    levels = tuple(b["intensity"] or 0 for b in info[: req.bars])
    return Priming(ref.id, "controls", why, intensity=levels)
