"""``composer eval retrieval``: does a query written from a piece's description find it?

For held-out pieces of the library (``split_of(id) == "test"``; the search weights were set on
the "val" split), a query is written from the piece's metadata with paraphrase templates:
other words than the stored description ("measures" for "bars", "unaccompanied melody" for
"a single melody line", "key of D minor"...), the title sometimes cut short or lower-cased,
and only a random subset of the attributes. The report gives how often the piece comes back
first and in the top 10.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from composer.paths import DEFAULT_LIBRARY
from composer.progress import ProgressFn, no_progress
from composer.retrieve.library import Library, PieceMeta
from composer.retrieve.search import SearchConfig, search
from composer.retrieve.text import COLLECTIONS, NUMBER_WORDS, key_words

TARGET_TOP10 = 0.90
# Other names for each style family than the description's (text.STYLE_NOUNS).
STYLE_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "chorale": ("hymn setting", "Lutheran chorale", "four-part hymn"),
    "renaissance": ("sacred polyphony", "Renaissance mass movement", "motet-style polyphony"),
    "medieval": ("ars nova song", "14th-century piece", "early music"),
    "quartet": ("string quartet", "quartet movement", "chamber piece for strings"),
    "folk": ("folk tune", "traditional song", "folksong"),
    "fiddle": ("dance tune for fiddle", "traditional fiddle melody", "fiddle air"),
    "piano": ("piano work", "keyboard piece", "solo piano music"),
}


@dataclass(frozen=True)
class Case:
    id: str
    style: str
    query: str
    rank: int | None  # 1-based rank of the piece among the top k; None: not in the top k


@dataclass(frozen=True)
class RetrievalReport:
    library: str
    library_pieces: int
    split: str
    seed: int
    k: int
    cases: list[Case] = field(default_factory=list)
    seconds: float = 0.0

    def rate(self, within: int, cases: list[Case] | None = None) -> float:
        cases = self.cases if cases is None else cases
        return sum(c.rank is not None and c.rank <= within for c in cases) / max(1, len(cases))

    def table(self) -> str:
        """The acceptance table, per style, and the misses."""
        by_style: dict[str, list[Case]] = defaultdict(list)
        for c in self.cases:
            by_style[c.style].append(c)
        top10 = self.rate(10)
        lines = [
            f"library: {self.library} ({self.library_pieces} pieces)",
            f"queries: {len(self.cases)} pieces of the {self.split} split, seed {self.seed}, "
            f"{self.seconds / max(1, len(self.cases)) * 1000:.0f} ms per query",
            "",
            f"{'style':12s} {'pieces':>6s} {'top-1':>7s} {'top-10':>7s}",
        ]
        for style, cases in sorted(by_style.items()):
            top1, top10_style = self.rate(1, cases), self.rate(10, cases)
            lines.append(f"{style:12s} {len(cases):6d} {top1:7.1%} {top10_style:7.1%}")
        verdict = "PASS" if top10 >= TARGET_TOP10 else "FAIL"
        lines += [
            f"{'all':12s} {len(self.cases):6d} {self.rate(1):7.1%} {top10:7.1%}",
            "",
            f"top-10 hit rate {top10:.1%} (target >= {TARGET_TOP10:.0%}): {verdict}",
            "",
            "examples (rank: query -> piece):",
        ]
        lines += [f"  {c.rank}: {c.query!r} -> {c.id}" for c in self.cases[:8]]
        misses = [c for c in self.cases if c.rank is None or c.rank > 10]
        lines.append(f"misses ({len(misses)}):")
        lines += [f"  {c.query!r} -> {c.id}" for c in misses]
        return "\n".join(lines)


def paraphrase(meta: PieceMeta, rng: random.Random) -> str:
    """A query for ``meta`` in other words than its description, with some attributes left out."""
    title = meta.title
    title_words = title.split()
    if len(title_words) >= 5 and rng.random() < 0.3:
        title = " ".join(title_words[:3])  # half-remembered
    if rng.random() < 0.3:
        title = title.lower()
    who = ""
    if meta.composer:
        surname = meta.composer.split()[-1]
        who = rng.choice((f"by {surname}", f"{surname}'s", f"composed by {meta.composer}"))
    elif meta.collection in COLLECTIONS:
        who = f"in {COLLECTIONS[meta.collection].removeprefix('the ')}"
    n = meta.parts
    voices = (
        rng.choice(("unaccompanied melody", "monophonic tune", "one voice"))
        if n == 1
        else rng.choice(
            (f"for {NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else n} voices", f"{n} parts")
        )
    )
    attributes = {
        "style": rng.choice(STYLE_PARAPHRASES.get(meta.style, ("piece", "work"))),
        "key": rng.choice(("in ", "key of ", "")) + key_words(meta.tonic, meta.mode),
        "meter": rng.choice((f"in {meta.meter}", f"{meta.meter} meter")),
        "voices": voices,
        "length": rng.choice((f"around {meta.bars} measures", f"roughly {meta.seconds:.0f} s")),
        "who": who,
        "place": f"collected in {meta.place}" if meta.place else "",
        "work": rng.choice((f"part of {meta.work}", f"from the {meta.work}")) if meta.work else "",
    }
    names = [name for name, text in attributes.items() if text]
    chosen = rng.sample(names, rng.randint(2, min(4, len(names))))
    parts = [attributes[name] for name in names if name in chosen]
    order = rng.random()
    if order < 0.5:
        return f"{title}, " + ", ".join(parts)
    return ", ".join(parts) + f": {title}"


def eval_retrieval(
    library: str | Path | Library = DEFAULT_LIBRARY,
    *,
    pieces: int = 200,
    seed: int = 0,
    split: str = "test",
    k: int = 10,
    config: SearchConfig | None = None,
    progress: ProgressFn | None = None,
) -> RetrievalReport:
    """Query ``pieces`` pieces of ``split`` (drawn with ``seed``) by paraphrase; rank each."""
    from composer.music.corpus import split_of

    progress = progress or no_progress
    lib = library if isinstance(library, Library) else Library.open(library)
    pool = sorted((p for p in lib.pieces if split_of(p.id) == split), key=lambda p: p.id)
    rng = random.Random(seed)
    chosen = rng.sample(pool, min(pieces, len(pool)))
    cases = []
    started = time.perf_counter()
    for done, meta in enumerate(chosen):
        progress("eval", done, len(chosen))
        query = paraphrase(meta, rng)
        hits = search(lib, query, k=k, config=config)
        rank = next((r for r, h in enumerate(hits, 1) if h.piece.id == meta.id), None)
        cases.append(Case(meta.id, meta.style, query, rank))
    progress("eval", len(chosen), len(chosen))
    return RetrievalReport(
        str(lib.folder), len(lib), split, seed, k, cases, time.perf_counter() - started
    )
