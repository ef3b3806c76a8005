"""Search a library: text similarity + title words + attribute match + feature similarity.

Every piece gets

    score = text + words + attributes + features   (each weighted by :class:`SearchConfig`)

- text: cosine similarity of the query's MiniLM embedding and the piece's description's;
- words: how much of the query's distinctive words (by inverse document frequency) are in the
  piece's title, composer, collection or place: names that a sentence embedding blurs;
- attributes: the mean match of the attributes the query or the flags state (key, style,
  meter, tempo, number of voices, length), each in [0, 1];
- features: 1 - feature distance to a given feature vector (a reference piece), if any.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from composer.errors import ComposerError
from composer.music.keys import parse_key
from composer.music.qualities import forms, read_qualities
from composer.music.words import read_values
from composer.paths import DEFAULT_LIBRARY
from composer.retrieve.features import feature_distances
from composer.retrieve.library import Library, PieceMeta
from composer.retrieve.text import NUMBER_WORDS, key_words, words
from composer.tokens.spec import STYLES


@dataclass(frozen=True)
class SearchConfig:
    """Weights of the score parts and the widths of the soft attribute matches.

    Equal weights: on the val split (300 paraphrase queries, ``eval_retrieval(split="val")``)
    doubling the attribute or word weight or halving the text weight moved top-1 by under a
    point and left top-10 at 98.7%, so nothing was tuned further.
    """

    text: float = 1.0
    words: float = 1.0
    attributes: float = 1.0
    features: float = 1.0
    length_width: float = 0.15  # |log(bars / asked)| at which the length match is 1/e
    tempo_width: float = 0.25  # the same for tempo (log2 ratio)


@dataclass
class Query:
    """What a query asks for: its text and the attributes it (or a flag) states."""

    text: str
    key: tuple[int, str] | None = None
    style: str | None = None
    meter: str | None = None
    tempo: float | None = None
    parts: int | None = None
    bars: int | None = None
    seconds: float | None = None
    notes: list[str] = field(default_factory=list)  # "key from 'D minor'"

    def stated(self) -> list[str]:
        names = ("key", "style", "meter", "tempo", "parts", "bars", "seconds")
        return [n for n in names if getattr(self, n) is not None]


@dataclass(frozen=True)
class Hit:
    """One result with the parts of its score."""

    piece: PieceMeta
    row: int  # row in the library
    score: float
    text: float
    words: float
    attributes: float  # mean match of the stated attributes (0 when none are stated)
    features: float | None  # 1 - feature distance; None without a query feature vector
    matched: dict[str, float]  # per stated attribute, its match

    def line(self) -> str:
        p = self.piece
        who = p.composer or p.collection
        title = f"{p.title} ({p.work})" if p.work else p.title
        parts = f"text {self.text:.2f} + words {self.words:.2f} + attributes {self.attributes:.2f}"
        if self.matched:
            parts += " (" + ", ".join(f"{k} {v:.1f}" for k, v in self.matched.items()) + ")"
        if self.features is not None:
            parts += f" + features {self.features:.2f}"
        return (
            f"{self.score:6.3f}  {title} - {who} [{p.style}, {key_words(p.tonic, p.mode)}, "
            f"{p.meter}, {p.parts} part{'s' * (p.parts != 1)}, {p.bars} bars]\n"
            f"        {parts}\n        {p.id}"
        )


_COUNT = r"(\d|" + "|".join(NUMBER_WORDS[1:]) + ")"
_PARTS = re.compile(rf"\b{_COUNT}[\s-]*(?:voices?|parts?|instruments?|lines?)\b", re.I)
_SOLO = re.compile(r"\b(?:single (?:melody )?line|monophonic|unaccompanied|one voice)\b", re.I)
_BARS = re.compile(r"\b(\d{1,4})\s*(?:bars?|measures?)\b", re.I)
# Words that name a corpus style family outright; the longest match wins. Dances and forms (a
# jig, a hymn) are read as a request's are (composer.music.qualities), with the meter and
# tempo they imply.
STYLE_WORDS: dict[str, str] = {
    "chorale": "chorale", "renaissance": "renaissance", "motet": "renaissance",
    "madrigal": "renaissance", "mass": "renaissance", "polyphony": "renaissance",
    "polyphonic": "renaissance", "medieval": "medieval", "ars nova": "medieval",
    "trecento": "medieval", "quartet": "quartet", "folk song": "folk", "folksong": "folk",
    "folk": "folk", "fiddle": "fiddle", "strathspey": "fiddle", "piano": "piano",
    "keyboard": "piano",
}  # fmt: skip


def parse_query(text: str) -> Query:
    """The attributes a query states in so many words (a key, a meter, "four voices", ...).

    Keys, tempi, meters and durations are read as a request's are (composer.music.words); a
    tempo word stands for the middle of its range."""
    values = read_values(text, None)  # the library holds meters the vocabulary lacks
    q = Query(text, key=values.key, seconds=values.duration, notes=list(values.notes))
    if values.meter:
        q.meter = "{}/{}".format(*values.meter)
    if values.bpm is not None:
        q.tempo = values.bpm
    elif values.tempo_range:
        q.tempo = sum(values.tempo_range) / 2
    if m := _SOLO.search(text):
        q.parts = 1
        q.notes.append(f"voices from {m.group(0)!r}")
    elif m := _PARTS.search(text):
        n = m.group(1).lower()
        q.parts = int(n) if n.isdigit() else NUMBER_WORDS.index(n)
        q.notes.append(f"voices from {m.group(0)!r}")
    if m := _BARS.search(text):
        q.bars = int(m.group(1))
        q.notes.append(f"length from {m.group(0)!r}")
    form = next((r for r in read_qualities(text).readings if r.attribute == "form"), None)
    if form is not None:
        implied = forms()[form.value]
        q.style = implied.style
        q.meter = q.meter or "{}/{}".format(*implied.meter)
        q.tempo = q.tempo if q.tempo is not None else sum(implied.tempo) / 2
        q.notes.append(f"style, meter and tempo of a {form.value} from {form.words!r}")
        return q
    lowered = text.lower()
    for phrase in sorted(STYLE_WORDS, key=len, reverse=True):
        if re.search(rf"\b{phrase}s?\b", lowered):
            q.style = STYLE_WORDS[phrase]
            q.notes.append(f"style from {phrase!r}")
            break
    return q


def search(
    library: Library | str | Path = DEFAULT_LIBRARY,
    query: str = "",
    *,
    key: str | tuple[int, str] | None = None,
    style: str | None = None,
    meter: str | None = None,
    tempo: float | None = None,
    k: int = 10,
    features: np.ndarray | None = None,
    config: SearchConfig | None = None,
) -> list[Hit]:
    """The ``k`` best pieces for a text query, attributes given as flags, and/or features.

    Flags override what the text states. ``features`` is a symbolic feature vector
    (:func:`composer.retrieve.features.symbolic_features` of a reference piece).
    """
    lib = library if isinstance(library, Library) else Library.open(library)
    config = config or SearchConfig()
    q = parse_query(query)
    if key is not None:
        q.key = parse_key(key) if isinstance(key, str) else key
    if style is not None:
        styles = sorted(set(STYLES) | set(lib.columns.style.tolist()))
        if style not in styles:
            raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(styles)}")
        q.style = style
    if meter is not None:
        if not re.fullmatch(r"\d{1,2}/\d{1,2}", meter):
            raise ValueError(f"meter {meter!r}: write it as 3/4, 6/8, ...")
        q.meter = meter
    if tempo is not None:
        q.tempo = float(tempo)
    if not query.strip() and features is None and not q.stated():
        raise ComposerError(None, "search for what? give a query, an attribute or a reference")
    n = len(lib)
    if n == 0:
        return []
    text = lib.embeddings @ _embed(query) if query.strip() else np.zeros(n, np.float32)
    lexical = _lexical(lib, query)
    matched = _attribute_matches(lib, q, config)
    attrs = np.mean(list(matched.values()), axis=0) if matched else np.zeros(n)
    feats = None
    if features is not None:
        feats = 1.0 - feature_distances(lib.features32, features)
    total = config.text * text + config.words * lexical + config.attributes * attrs
    if feats is not None:
        total = total + config.features * feats
    top = np.argpartition(-total, min(k, n) - 1)[: min(k, n)]
    top = top[np.argsort(-total[top], kind="stable")]
    return [
        Hit(
            piece=lib.pieces[i],
            row=int(i),
            score=float(total[i]),
            text=float(text[i]),
            words=float(lexical[i]),
            attributes=float(attrs[i]),
            features=None if feats is None else float(feats[i]),
            matched={name: float(v[i]) for name, v in matched.items()},
        )
        for i in top
    ]


def reference_features(path: str | Path) -> np.ndarray:
    """The feature vector of the first piece in a MIDI or score file (for ``features=``)."""
    from composer.music.corpus import parse_file
    from composer.music.scores import CorpusPiece
    from composer.retrieve.features import symbolic_features

    path = Path(path)
    if not path.is_file():
        raise ComposerError(path, "no such file")
    items = parse_file(path, path.name, path.parent.name)
    for item in items:
        if isinstance(item, CorpusPiece):
            return symbolic_features(item.score)
    reason = items[0].reason if items else "no pieces in it"
    raise ComposerError(path, f"cannot read it as music: {reason}")


@lru_cache(maxsize=1)
def _model():
    from composer.music.words import sentence_model

    return sentence_model()


def _embed(text: str) -> np.ndarray:
    """(384,) unit embedding of ``text``."""
    v = _model().encode([text], normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(v[0], np.float32)


def _lexical(lib: Library, query: str) -> np.ndarray:
    """(n,) idf-weighted Dice overlap of the query's words with each piece's name words."""
    lex = lib.lexicon
    ids = sorted({lex.vocab[w] for w in words(query) if w in lex.vocab})
    if not ids:
        return np.zeros(len(lib), np.float32)
    q_weight = float(lex.idf[ids].sum())
    hits = np.asarray(lex.matrix[:, ids].sum(axis=1)).ravel()  # (n,) idf of shared words
    return (2.0 * hits / (q_weight + lex.doc_weight)).astype(np.float32)


def _attribute_matches(lib: Library, q: Query, config: SearchConfig) -> dict[str, np.ndarray]:
    """Per stated attribute, an (n,) match in [0, 1]."""
    c = lib.columns
    out: dict[str, np.ndarray] = {}
    if q.key is not None:
        tonic, mode = q.key
        minor = mode == "minor"
        same = (c.tonic == tonic) & (c.minor == minor)
        # The relative key (same signature) or the same tonic in the other mode: half.
        relative = (c.minor != minor) & (c.tonic == (tonic + (3 if minor else -3)) % 12)
        parallel = (c.tonic == tonic) & (c.minor != minor)
        out["key"] = np.where(same, 1.0, np.where(relative | parallel, 0.5, 0.0))
    if q.style is not None:
        out["style"] = (c.style == q.style).astype(np.float64)
    if q.meter is not None:
        out["meter"] = np.where(
            c.meter == q.meter, 1.0, np.where(_bar_quarters(c.meter, q.meter), 0.5, 0.0)
        )
    if q.tempo is not None:
        ratio = np.abs(np.log2(c.tempo / q.tempo)) / config.tempo_width
        out["tempo"] = np.where(c.tempo_marked, np.exp(-(ratio**2)), 0.5)
    if q.parts is not None:
        out["parts"] = np.clip(1.0 - 0.5 * np.abs(c.parts - q.parts), 0.0, 1.0)
    if q.bars is not None:
        out["bars"] = np.exp(-((np.log(c.bars / q.bars) / config.length_width) ** 2))
    if q.seconds is not None:
        ratio = np.log(np.maximum(c.seconds, 1.0) / q.seconds) / config.length_width
        out["seconds"] = np.exp(-(ratio**2))
    return out


def _bar_quarters(meters: np.ndarray, meter: str) -> np.ndarray:
    """(n,) True where a meter's bar lasts as long as ``meter``'s (2/2 and 4/4, 6/8 and 3/4)."""
    names, inverse = np.unique(meters, return_inverse=True)
    want = _quarters(meter)
    return np.array([math.isclose(_quarters(m), want) for m in names], bool)[inverse]


def _quarters(meter: str) -> float:
    num, den = (int(x) for x in meter.split("/"))
    return num * 4 / den
