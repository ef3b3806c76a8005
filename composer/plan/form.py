"""Form: the plan's phrases and sections, what returns, and how each section is accompanied.

Music is remembered by what comes back. The bars are grouped into phrases (four bars, two in
short or slow pieces) and the phrases into sections: the video's scenes where it has them,
else an A-B-A layout. Some later phrases restate an earlier one (the arranger copies the
decoder's bars; a varied restatement keeps the decoder's own ending), as often as real music of
the plan's style repeats itself: the share of two-bar windows that recur, measured on the
shipped library by ``composer eval musicality`` (RECURRENCE), is the target the layout is
chosen to meet. Each section gets a texture and the parts that play from its intensity, so a
scene change can thin the band or bring it all in.
"""

from __future__ import annotations

from itertools import product

from composer.music.roles import roles_for
from composer.music.words import meter_class
from composer.types import BarPlan, Form, Phrase, Section

# Share of two-bar melody windows that recur in pieces of 16 bars or more, per style, with
# repeats played: the corpus figures `composer eval musicality` prints (40 pieces a style).
RECURRENCE = {
    "chorale": 0.37, "renaissance": 0.08, "medieval": 0.50, "quartet": 0.70,
    "folk": 0.23, "fiddle": 0.67, "piano": 0.75, "other": 0.42,
}  # fmt: skip
LONG_BAR = 3.5  # seconds: bars this long make two-bar phrases
ABA_PREFERENCE = 0.05  # how much nearer the target a layout must come to give up A-B-A
# Phrase letter layouts by number of phrases; a prime is a restatement with a new ending.
LAYOUTS = {
    1: ["a"], 2: ["a", "a'"], 3: ["a", "b", "a"], 4: ["a", "a'", "b", "a"],
    5: ["a", "a'", "b", "b'", "a"], 6: ["a", "a'", "b", "b'", "a", "a'"],
}  # fmt: skip


def plan_form(
    bars: list[BarPlan],
    *,
    style: str,
    meter: tuple[int, int],
    bpm: float,
    instruments: list[int],
    texture: tuple[str, bool],
) -> Form:
    """Phrases and sections over ``bars``. ``texture``: (name, stated): a stated texture (a
    waltz, a dense piece) holds in every section; "free" lets each section's style and
    intensity choose."""
    n = len(bars)
    if n == 0:
        return Form([], [])
    bar_seconds = (bars[1].start - bars[0].start) if n > 1 else 2.0
    size = 2 if n < 8 or bar_seconds >= LONG_BAR else 4
    groups = _section_bars(bars, size)
    scenes = sum(b.section for b in bars) > 1
    phrases = _phrases(groups, size, RECURRENCE.get(style, 0.3), aba=not scenes)
    roles = roles_for(len(instruments))
    sections = []
    labels = _section_labels(phrases, groups)
    for k, (start, length) in enumerate(groups):
        level = sum(b.intensity for b in bars[start : start + length]) / length
        name, why = _texture(style, meter, bpm, level, instruments, texture, k)
        resting = _resting(roles, level, k, len(groups))
        sections.append(Section(start, length, labels[k], name, resting, why))
    return Form(phrases, sections)


def _section_bars(bars: list[BarPlan], size: int) -> list[tuple[int, int]]:
    """(first bar, length) of each section: the scenes (none shorter than a phrase), else
    A, B and A again in pieces of three phrases or more."""
    n = len(bars)
    starts = [b.index for b in bars if b.section]
    starts = [s for i, s in enumerate(starts) if i == 0 or s - starts[i - 1] >= size]
    starts = [s for s in starts if n - s >= size or s == 0]
    if len(starts) == 1:
        phrases = -(-n // size)
        if phrases >= 3:
            first = (phrases // 2 if phrases >= 5 else 2 if phrases == 4 else 1) * size
            last = n - size * (2 if phrases >= 6 else 1)
            starts = sorted({0, first, max(last, first + size)})
            starts = [s for s in starts if s < n]
    return [(s, (starts[i + 1] if i + 1 < len(starts) else n) - s) for i, s in enumerate(starts)]


def _phrases(groups: list[tuple[int, int]], size: int, target: float, aba: bool) -> list[Phrase]:
    """Phrases in each section, lettered so that the share of recurring two-bar windows comes
    nearest ``target`` (at least one phrase returns when there are three or more). ``aba``:
    the middle sections bring new material and the last returns to the opening unless that
    overshoots the target; else (scenes) any section may begin with the opening's return."""
    slots = [(s + k, min(size, s + n - (s + k))) for s, n in groups for k in range(0, n, size)]
    total = sum(n for _, n in groups)
    # Each section starts on new material or the opening's return; later phrases restate the
    # section's first, exactly or with a new ending, or bring new material.
    heads = [i for i, (start, _) in enumerate(slots) if any(start == s for s, _ in groups)]
    choices = []
    ending = tuple(k == len(heads) - 2 for k in range(len(heads) - 1))  # A B A
    if aba:
        options = [ending, tuple(False for _ in ending)]
    else:
        options = list(product((False, True), repeat=min(len(heads) - 1, 3)))
    # How each section goes on after its first phrase (the fourth and later as the third).
    policies = list(product(("new", "pairs", "twice", "varied"), repeat=min(len(heads), 3)))
    choices = [_letters(slots, heads, returns, rest) for returns in options for rest in policies]

    # Nearest the target; on a near tie, the layout whose last section returns to the opening.
    def cost(ph: list[Phrase]) -> tuple[float, int]:
        closes = aba and ph[heads[-1]].source is not None
        return _miss(ph, total, target, len(slots)) - (ABA_PREFERENCE if closes else 0.0), \
            _returns(ph)  # fmt: skip

    return min(choices, key=cost)


def _letters(slots, heads, head_returns, policies) -> list[Phrase]:
    """One layout: each section's first phrase new or the opening's return; the others by its
    policy: "new"; "varied" restatements of the section's first (a a' a'); "pairs" (every
    second phrase restates the one before it with a new ending: a a' b b'); "twice" (the same,
    note for note: a a b b)."""
    letters = _labels("bcdefghijklmnopqrstuvwxyz")
    out: list[Phrase] = []
    j = 0  # the phrase's place in its section
    for i, (start, length) in enumerate(slots):
        if i in heads:
            j, k = 0, heads.index(i)
            rest = policies[min(k, len(policies) - 1)]
            returns = k > 0 and head_returns[min(k, len(head_returns)) - 1]
            if k == 0 or not returns:
                out.append(Phrase(start, length, "a" if k == 0 else next(letters)))
            else:
                out.append(_restate(out[0], start, length, exact=True))
            continue
        j += 1
        home = out[-1] if rest in ("pairs", "twice") else out[-j]
        if rest == "twice" and j % 2 == 1:
            out.append(_restate(home, start, length, exact=True))
        elif (rest == "varied" or (rest == "pairs" and j % 2 == 1)) and min(length, home.bars) > 1:
            out.append(_restate(home, start, length, exact=False))
        else:
            out.append(Phrase(start, length, next(letters)))
    return out


def _labels(alphabet: str):
    """b, c, ... z, then b2, c2, ...: names for new material that never run out."""
    round_ = 1
    while True:
        for letter in alphabet:
            yield letter if round_ == 1 else f"{letter}{round_}"
        round_ += 1


def _restate(home: Phrase, start: int, length: int, exact: bool) -> Phrase:
    """``home`` again at ``start``: note for note, or with its last bar the decoder's own."""
    base = home.label.rstrip("'")
    source = home.source if home.source is not None else home.start
    same = min(length, home.bars)
    if exact:
        return Phrase(start, length, base, source, same)
    return Phrase(start, length, base + "'", source, same - 1)


def _content(phrases: list[Phrase], total: int) -> list[int]:
    """An id per bar: copied bars carry their source's id, others their own."""
    ids = list(range(total))
    for p in phrases:
        for k in range(p.exact):
            if p.source is not None:
                ids[p.start + k] = ids[p.source + k]
    return ids


def recurring_share(ids: list[int]) -> float:
    """Share of two-bar windows whose content recurs two or more bars away."""
    windows = [(ids[i], ids[i + 1]) for i in range(len(ids) - 1)]
    if not windows:
        return 0.0
    at: dict[tuple[int, int], list[int]] = {}
    for i, w in enumerate(windows):
        at.setdefault(w, []).append(i)
    hits = sum(any(abs(i - j) >= 2 for j in at[w]) for i, w in enumerate(windows))
    return hits / len(windows)


def _miss(phrases: list[Phrase], total: int, target: float, slots: int) -> float:
    share = recurring_share(_content(phrases, total))
    # A piece of three phrases or more restates one whole: what the ear recognises as a return
    # (before the last bar, which the final cadence rewrites).
    whole = any(p.source is not None and p.exact >= min(p.bars, 4) and p.start + p.exact < total
                for p in phrases)  # fmt: skip
    return abs(share - target) + (0 if whole or slots < 3 else 1.0)


def _returns(phrases: list[Phrase]) -> int:
    return sum(p.source is not None for p in phrases)


def _section_labels(phrases: list[Phrase], groups: list[tuple[int, int]]) -> list[str]:
    """A for the sections that open with the opening's phrase, then B, C, ... in order."""
    letters = _labels("BCDEFGHIJKLMNOPQRSTUVWXYZ")
    heads = [next(p for p in phrases if p.start == s) for s, _ in groups]
    return ["A" if h.label == "a" else next(letters) for h in heads]


# Textures by style when nothing states one: (calm, moderate, intense) sections.
_STYLE_TEXTURES = {
    "chorale": ("chorale", "chorale", "chorale"),
    "renaissance": ("held", "held", "chorale"),
    "medieval": ("held", "held", "pulse"),
    "quartet": ("held", "arpeggio", "pulse"),
    "folk": ("arpeggio", "arpeggio", "pulse"),
    "fiddle": ("march", "march", "march"),
    "piano": ("arpeggio", "alberti", "running"),
    "other": ("held", "arpeggio", "pulse"),
}
GUITARS = range(24, 32)


def _texture(style, meter, bpm, level, instruments, texture, k) -> tuple[str, str]:
    """The section's texture and why: a stated one everywhere; else the style's for the
    section's intensity, a step livelier in every second section (B against A), and the
    dances' own accompaniment for fiddle tunes and piano in 3/4."""
    name, stated = texture
    if stated and name != "free":
        return name, f"asked for: {name}"
    step = 0 if level < 0.75 else 1 if level < 1.75 else 2
    why = f"{style} at intensity {level:.1f}"
    if k % 2 == 1:
        step, why = (step + 1 if step < 2 else 1), why + ", a contrasting section"
    pick = _STYLE_TEXTURES.get(style, _STYLE_TEXTURES["other"])[step]
    kind = meter_class(*meter)
    if style == "fiddle" or (style == "folk" and kind == "compound"):
        pick = "jig" if kind == "compound" else "waltz" if kind == "triple" else "march"
        why = f"a {style} tune's dance accompaniment in {meter[0]}/{meter[1]}"
    elif style == "piano" and kind == "triple" and bpm >= 100:
        pick, why = "waltz", f"piano in {meter[0]}/{meter[1]} at {bpm:.0f} bpm"
    if pick in ("arpeggio", "pulse") and any(p in GUITARS for p in instruments[1:]):
        pick, why = "strum", why + "; the guitar strums"
    if 45 in instruments and pick != "chorale":
        pick, why = "pizzicato", why + "; plucked strings"
    return pick, why


def _resting(roles: tuple[int, ...], level: float, k: int, sections: int) -> list[int]:
    """The roles that rest: none, but a calm section of a piece with several sections lets the
    inner parts past the first rest (it thins; the next brings them back)."""
    if len(roles) > 3 and level < 0.75 and sections > 1 and k < sections - 1 and k % 2 == 0:
        return list(roles[2:-1])
    return []
