"""Stage 4 inside compose: the plan's best reference pieces, and a primer from one of them.

The query is the plan itself: its style, key, meter and tempo as attributes, and the user's
prompt, if any, as text. The best pick that has bars in the plan's meter primes the decoder
with a two-bar excerpt in the plan's key (composer/retrieve/prime.py); the picks are recorded
in plan.json either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.errors import ComposerError
from composer.progress import log
from composer.retrieve.library import DEFAULT_LIBRARY, Library, load_piece
from composer.retrieve.prime import plan_priming, reference_from_piece
from composer.retrieve.search import Hit, search
from composer.retrieve.text import key_words
from composer.types import Plan, ReferencePick, References

# A piece is re-parsed from its file to prime the decoder. A tune of an ABC collection is parsed
# alone (library.load_piece); other files this large would cost more than the decoding, so their
# pieces do not prime.
_MAX_PRIMING_FILE = 256_000  # bytes
_PICKS = 3


def plan_query(plan: Plan, prompt: str) -> str:
    """The text half of the plan's query: the user's own words, if any.

    Without a prompt the plan's attributes alone make the query: the library's descriptions
    hold titles, makers and musical facts, not moods, so the plan's mood words would match
    nothing the attributes do not (and the sentence model would cost seconds to load).
    """
    return prompt.strip()


@dataclass
class Found:
    """A search for the plan: the query, the library, its best pieces, or why there are none."""

    query: str
    library: str
    hits: list[Hit]
    error: str | None = None


def find_references(
    plan: Plan, prompt: str, library: str | Path | Library = DEFAULT_LIBRARY, k: int = _PICKS
) -> Found:
    """The ``k`` best library pieces for ``plan``; a missing or unreadable library is noted,
    not raised (the music is written without references)."""
    query = plan_query(plan, prompt)
    try:
        hits = search(
            library,
            query,
            key=tuple(plan.key.value),
            style=plan.style.value,
            meter="{}/{}".format(*plan.meter.value),
            tempo=float(plan.tempo.value),
            k=k,
        )
    except (ComposerError, OSError, ValueError) as e:
        log.warning("no references: %s", e)
        return Found(query, str(library), [], f"no library: {e}")
    return Found(query, str(library), hits)


def prime_from(found: Found, req, tok):
    """(References for plan.json, ``req`` primed by the first pick in its mode with bars in
    its meter)."""
    picks = [_pick(h) for h in found.hits]
    priming = found.error or "none of the picks has bars in the plan's meter and mode"
    for hit in found.hits:
        try:
            piece = _load(hit)
            if piece is None:
                continue
            ref = reference_from_piece(piece, tok)
        except (ComposerError, ValueError) as e:
            log.warning("reference %s: %s", hit.piece.id, e)
            continue
        if ref.key[1] != req.key[1]:
            continue  # a major excerpt moved to the relative major would pull a minor plan there
        how = plan_priming(req, ref, tok)
        if how.mode == "excerpt":
            return References(found.query, found.library, picks, how.describe()), how.apply(req)
    return References(found.query, found.library, picks, priming), req


def best_reference(req, tempo: float, tok, library=DEFAULT_LIBRARY):
    """(Hit, Reference) of the library's best piece for ``req`` (its style, key, meter and
    tempo) that has bars in its meter, or None (``composer generate --reference auto``)."""
    hits = search(
        library, "", key=req.key, style=req.style, meter="{}/{}".format(*req.meter),
        tempo=tempo, k=10,
    )  # fmt: skip
    for hit in hits:
        try:
            piece = _load(hit)
            ref = None if piece is None else reference_from_piece(piece, tok)
        except (ComposerError, ValueError) as e:
            log.warning("reference %s: %s", hit.piece.id, e)
            continue
        if ref is None or ref.key[1] != req.key[1]:
            continue  # see prime_from
        if plan_priming(req, ref, tok).mode == "excerpt":
            return hit, ref
    return None


def _pick(hit: Hit) -> ReferencePick:
    p = hit.piece
    parts = hit.line().splitlines()[1].strip()
    return ReferencePick(
        p.id, p.title, p.composer or p.collection, p.style, key_words(p.tonic, p.mode), p.meter,
        round(hit.score, 3), parts,
    )  # fmt: skip


def _load(hit: Hit):
    """The hit's CorpusPiece, or None when its file is gone or too slow to parse here."""
    from music21 import common

    from composer.retrieve.library import MUSIC21

    p = hit.piece
    path = Path(common.getCorpusFilePath()) / p.path if p.source == MUSIC21 else Path(p.path)
    if not path.is_file():
        return None
    single_tune = path.suffix.lower() == ".abc" and p.tune.isdigit()  # parsed alone: fast
    return load_piece(p) if single_tune or path.stat().st_size <= _MAX_PRIMING_FILE else None
