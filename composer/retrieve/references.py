"""Stage 4: the plan's best reference pieces from the library.

The query is the plan itself: its style, key, meter and tempo as attributes, and the user's
prompt, if any, as text. The picks are recorded in plan.json; the generation stage primes the
decoder from the first that suits (composer/model/prime.py).
"""

from __future__ import annotations

from pathlib import Path

from composer.errors import ComposerError
from composer.paths import DEFAULT_LIBRARY
from composer.progress import log
from composer.retrieve.library import Library
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


def find_references(
    plan: Plan, prompt: str = "", library: str | Path | Library = DEFAULT_LIBRARY, k: int = _PICKS
) -> References:
    """The ``k`` best library pieces for ``plan``; a missing or unreadable library is noted in
    ``priming``, not raised (the music is written without references)."""
    query = plan_query(plan, prompt)
    where = str(library.folder if isinstance(library, Library) else library)
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
        return References(query, where, [], f"no library: {e}")
    return References(query, where, [_pick(h) for h in hits], pieces=[h.piece for h in hits])


def _pick(hit: Hit) -> ReferencePick:
    p = hit.piece
    parts = hit.line().splitlines()[1].strip()
    return ReferencePick(
        p.id, p.title, p.composer or p.collection, p.style, key_words(p.tonic, p.mode), p.meter,
        round(hit.score, 3), parts,
    )  # fmt: skip
