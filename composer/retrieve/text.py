"""Words for a piece: the description that is embedded, and the names it is written with.

The description is written from the metadata alone (never from the notes), so the same
piece always gets the same sentence, and a query that states the same facts in other
words lands near it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from composer.music.keys import MAJOR_KEYS, MINOR_KEYS

if TYPE_CHECKING:
    from composer.retrieve.library import PieceMeta

# The composers of music21's corpus collections that are one composer's works.
COMPOSERS: dict[str, str] = {
    "bach": "Johann Sebastian Bach",
    "beach": "Amy Beach",
    "beethoven": "Ludwig van Beethoven",
    "chopin": "Frederic Chopin",
    "ciconia": "Johannes Ciconia",
    "corelli": "Arcangelo Corelli",
    "cpebach": "Carl Philipp Emanuel Bach",
    "handel": "George Frideric Handel",
    "haydn": "Joseph Haydn",
    "johnson_j_r": "J. Rosamond Johnson",
    "joplin": "Scott Joplin",
    "josquin": "Josquin des Prez",
    "liliuokalani": "Liliuokalani",
    "luca": "Zacara da Teramo",
    "lusitano": "Vicente Lusitano",
    "monteverdi": "Claudio Monteverdi",
    "mozart": "Wolfgang Amadeus Mozart",
    "palestrina": "Giovanni Pierluigi da Palestrina",
    "schoenberg": "Arnold Schoenberg",
    "schubert": "Franz Schubert",
    "schumann_clara": "Clara Schumann",
    "schumann_robert": "Robert Schumann",
    "verdi": "Giuseppe Verdi",
    "weber": "Carl Maria von Weber",
    "webern": "Anton Webern",
}
# Readable names of the corpus collections that gather many people's music.
COLLECTIONS: dict[str, str] = {
    "airdsAirs": "Aird's Selection of Scotch, English, Irish and Foreign Airs",
    "essenFolksong": "the Essen folksong collection",
    "leadSheet": "lead sheets",
    "miscFolk": "miscellaneous folk tunes",
    "nottingham-dataset": "the Nottingham folk music dataset",
    "oneills1850": "O'Neill's Music of Ireland (1850)",
    "ryansMammoth": "Ryan's Mammoth Collection",
    "trecento": "the Trecento (14th-century Italy)",
}
# What a piece of each style family is called in a sentence.
STYLE_NOUNS: dict[str, str] = {
    "chorale": "chorale",
    "renaissance": "Renaissance polyphonic piece",
    "medieval": "medieval ars nova piece",
    "quartet": "string quartet movement",
    "folk": "folk song",
    "fiddle": "fiddle tune",
    "piano": "piano piece",
    "other": "piece",
    "user": "piece",
}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
_WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about which piece is meant.
STOPWORDS = frozenset(
    "a an and the of in on for with by to from at or as is it its da de del di der die das"
    " von van le la el i ii iii no op".split()
)


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (accents and punctuation dropped), stopwords left out."""
    plain = unicodedata.normalize("NFKD", text.lower()).replace("'", "").replace("’", "")
    return [w for w in _WORD.findall(plain) if w not in STOPWORDS]


@dataclass(frozen=True)
class Lexicon:
    """The words of every piece's names, weighted by inverse document frequency."""

    vocab: dict[str, int]
    idf: np.ndarray  # (V,)
    matrix: sparse.csc_matrix  # (n, V): idf of word v where piece i's names hold it, else 0
    doc_weight: np.ndarray  # (n,) sum of each piece's idf weights


def name_words(meta: PieceMeta) -> set[str]:
    """The words of a piece's title, work, composer, collection and place."""
    collection = COLLECTIONS.get(meta.collection, meta.collection)
    return set(words(f"{meta.title} {meta.work} {meta.composer} {collection} {meta.place}"))


def build_lexicon(pieces: list[PieceMeta]) -> Lexicon:
    """The :class:`Lexicon` of ``pieces`` (built when a library is searched, in ~0.1 s)."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, meta in enumerate(pieces):
        for w in name_words(meta):
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    n = max(len(pieces), 1)
    df = np.bincount(np.asarray(cols, np.int64), minlength=len(vocab))
    idf = np.log((n + 1) / (df + 0.5)).astype(np.float32)
    matrix = sparse.csc_matrix(
        (idf[cols], (rows, cols)), shape=(len(pieces), len(vocab)), dtype=np.float32
    )
    doc_weight = np.asarray(matrix.sum(axis=1)).ravel()
    return Lexicon(vocab, idf, matrix, doc_weight)


def composer_name(raw: str | None) -> str:
    """'Palestrina, Giovanni Perluigi da' -> 'Giovanni Perluigi da Palestrina'."""
    if not raw:
        return ""
    raw = " ".join(str(raw).split()).rstrip(".")  # some files break the name over lines
    if raw.count(",") == 1:
        last, first = (s.strip() for s in raw.split(","))
        return f"{first} {last}" if first else last
    return raw


def key_words(tonic: int, mode: str) -> str:
    """(2, "minor") -> "D minor"."""
    if mode == "minor":
        return f"{MINOR_KEYS[tonic % 12][:-1]} minor"
    return f"{MAJOR_KEYS[tonic % 12]} major"


def tempo_word(bpm: float) -> str:
    """A plain tempo word for quarter notes per minute."""
    if bpm < 66:
        return "slow"
    if bpm < 100:
        return "moderate"
    if bpm < 140:
        return "lively"
    return "fast"


def voices_phrase(parts: int, programs: tuple[int, ...]) -> str:
    if programs:
        n = len(programs)
        return f"{NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else n} instrument" + "s" * (n != 1)
    if parts == 1:
        return "a single melody line"
    return f"{NUMBER_WORDS[parts] if parts < len(NUMBER_WORDS) else parts} voices"


def density_word(notes_per_bar: float) -> str:
    if notes_per_bar < 6:
        return "sparse"
    if notes_per_bar < 16:
        return "moderately dense"
    return "dense"


def describe(meta: PieceMeta) -> str:
    """The description embedded for ``meta``: title, who and where, style, the attributes."""
    head = f"{meta.title}, from {meta.work}" if meta.work else meta.title
    head += f": a {STYLE_NOUNS.get(meta.style, 'piece')}"
    if meta.composer:
        head += f" by {meta.composer}"
    if meta.collection in COLLECTIONS or not meta.composer:
        head += f" from {COLLECTIONS.get(meta.collection, meta.collection)}"
    if meta.place:
        head += f", {meta.place}"
    facts = [
        voices_phrase(meta.parts, meta.programs),
        f"in {key_words(meta.tonic, meta.mode)}",
        f"{meta.meter} time",
    ]
    if meta.tempo_marked:
        facts.append(f"{tempo_word(meta.tempo)} tempo ({meta.tempo:.0f} bpm)")
    facts.append(f"{meta.bars} bars, about {meta.seconds:.0f} seconds")
    facts.append(f"{density_word(meta.density)} texture")
    tail = ", ".join(facts)
    return f"{head}. {tail[0].upper()}{tail[1:]}."
