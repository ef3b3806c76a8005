"""Arrange: chords read from the decoder's notes, accompaniment voiced from them, the form's
returns, and roles in their instruments' ranges."""

from __future__ import annotations

import pytest
import symusic

from composer.arrange.accompany import accompany, pattern
from composer.arrange.arranger import arrange, role_programs
from composer.arrange.harmony import Chord, harmonize, spans
from composer.music.instruments import playable
from composer.music.roles import CHORDS_TRACK
from composer.plan.form import plan_form, recurring_share
from composer.plan.planner import make_plan
from composer.plan.request import PromptFacts
from composer.types import BarPlan, Choice

TPQ = 24


def _n(t: int, d: int, p: int) -> symusic.Note:
    return symusic.Note(t, d, p, 80)


def _block(progression: list[tuple[int, ...]], span: int) -> list[list[symusic.Note]]:
    """Parts (top first) holding each chord of ``progression`` for ``span`` ticks."""
    size = len(progression[0])
    return [[_n(i * span, span, chord[size - 1 - k]) for i, chord in enumerate(progression)]
            for k in range(size)]  # fmt: skip


def test_chords_are_read_from_the_parts_and_close_on_a_cadence():
    # C major: I IV ii V | vi IV V I, one chord per half bar of 4/4.
    prog = [(48, 64, 67, 72), (53, 65, 69, 72), (50, 62, 65, 69), (55, 62, 67, 71),
            (57, 64, 69, 72), (53, 60, 65, 69), (55, 59, 62, 67), (48, 60, 64, 72)]  # fmt: skip
    half = 2 * TPQ
    parts = _block(prog, half)
    starts = spans(4, 4, TPQ, len(prog) * half, chorale=False)
    assert starts == [i * half for i in range(len(prog))]
    chords = harmonize(parts, (0, "major"), starts, len(prog) * half)
    assert [c.symbol() for c in chords] == ["C", "F", "Dm", "G", "Am", "F", "G", "C"]


def test_a_bare_line_gets_the_chords_its_strong_beats_allow():
    """Only a melody: each strong-beat note is a tone of its chord, and the end is V - I."""
    bar = 3 * TPQ
    tune = [67, 69, 71, 72, 74, 71, 69, 67]  # one note a bar, G major
    melody = [_n(i * bar, bar, p) for i, p in enumerate(tune)]
    starts = spans(3, 4, TPQ, len(tune) * bar, chorale=False)
    chords = harmonize([melody], (7, "major"), starts, len(tune) * bar)
    assert len(chords) == len(tune)
    assert all(p % 12 in c.tones() for p, c in zip(tune, chords, strict=True))
    assert chords[-1].symbol() == "G" and chords[-2].root == 2  # D (or D7), then G


@pytest.mark.parametrize(
    "texture,num,den,bass,chords",
    [("waltz", 3, 4, {0}, {1, 2}), ("march", 4, 4, {0, 2}, {1, 3}), ("march", 2, 4, {0}, {1}),
     ("jig", 6, 8, {0, 3}, {2, 5}), ("chorale", 4, 4, {0, 1, 2, 3}, {0, 1, 2, 3})],
)  # fmt: skip
def test_patterns_put_the_bass_and_the_chords_where_players_do(texture, num, den, bass, chords):
    shape = pattern(texture, num, den)
    assert {o for o, _ in shape.bass} == bass
    assert {o for o, _ in shape.chords} == chords


def _accompanied(texture: str, programs: list[int], num: int = 3, den: int = 4, bars: int = 4):
    bar = num * TPQ * 4 // den
    melody = [_n(b * bar, bar, 76 - (b % 2) * 5) for b in range(bars)]
    chords = [Chord(b * bar, (b + 1) * bar, *[(0, "maj"), (7, "maj")][b % 2]) for b in range(bars)]
    sections = [(0, bars * bar, texture, [True] * len(programs))]
    return melody, accompany(melody, chords, programs, sections, num=num, den=den, tpq=TPQ)


def test_a_waltz_is_oom_pah_pah_under_the_melody_with_the_bass_lowest():
    melody, (violin, viola, cello) = _accompanied("waltz", [40, 41, 42])
    bar = 3 * TPQ
    assert {n.time % bar for n in cello} == {0}
    assert {n.time % bar for n in violin} == {n.time % bar for n in viola} == {TPQ, 2 * TPQ}
    for b in range(4):
        top = min(n.pitch for n in melody if n.time // bar == b)
        inner = [n.pitch for n in violin + viola if n.time // bar == b]
        low = [n.pitch for n in cello if n.time // bar == b]
        assert max(inner) < top and max(low) < min(inner)
        # Each chord complete over the bar: the bass's root and the two inner tones.
        tones = {p % 12 for p in inner + low}
        assert tones == {0, 4, 7} if b % 2 == 0 else tones == {7, 11, 2}
    for notes, program in ((violin, 40), (viola, 41), (cello, 42)):
        lo, hi = playable(program)
        assert all(lo <= n.pitch <= hi for n in notes)


def test_a_piano_left_hand_plays_the_chords_above_its_bass():
    _, (left,) = _accompanied("waltz", [0])
    bar = 3 * TPQ
    beat1 = [n.pitch for n in left if n.time % bar == 0]
    beat2 = [n.pitch for n in left if n.time % bar == TPQ]
    assert len(beat2) >= 2 and max(beat1) < min(beat2)


def test_the_bass_leaves_parallel_fifths_and_octaves_with_the_melody_alone():
    """A melody moving by step over I-ii-iii-IV: root-position basses would follow it in
    octaves; the bass moves against it instead."""
    bar = 4 * TPQ
    melody = [_n(b * bar, bar, 72 + [0, 2, 4, 5][b]) for b in range(4)]
    chords = [Chord(b * bar, (b + 1) * bar, [0, 2, 4, 5][b], ["maj", "min", "min", "maj"][b])
              for b in range(4)]  # fmt: skip
    (bass,) = accompany(melody, chords, [42], [(0, 4 * bar, "held", [True])], num=4, den=4,
                        tpq=TPQ)  # fmt: skip
    low = [min(n.pitch for n in bass if n.time // bar == b) for b in range(4)]
    for b in range(1, 4):
        before, now = (melody[b - 1].pitch - low[b - 1]) % 12, (melody[b].pitch - low[b]) % 12
        same_way = (low[b] - low[b - 1]) * (melody[b].pitch - melody[b - 1].pitch) > 0
        assert not (same_way and before == now and now in (0, 7)), low


def test_a_tin_whistle_never_plays_the_bass_and_never_plays_under_a_flute():
    plan = make_plan(None, PromptFacts(text="", duration=10.0))
    plan.instruments = Choice([73, 24, 78], "prompt", "flute, guitar and tin whistle")
    programs = role_programs(plan, 6)
    assert programs[0] == 78 and programs[-1] == 24 and set(programs[1:-1]) == {73}
    plan.instruments = Choice([42, 0, 43], "prompt", "a cello tune with piano and bass")
    assert role_programs(plan, 3) == [42, 0, 43]  # a piano can play under a cello


def test_the_form_returns_a_phrase_and_the_arranger_restates_it_note_for_note():
    bars = [BarPlan(i, i * 2.0, 1, None, i == 0) for i in range(16)]
    form = plan_form(bars, style="fiddle", meter=(4, 4), bpm=120, instruments=[73, 24, 32],
                     texture=("free", False))  # fmt: skip
    returns = [p for p in form.phrases if p.source is not None and p.exact == 4]
    assert returns, form.describe()
    assert form.sections[0].label == form.sections[-1].label == "A"

    plan = make_plan(None, PromptFacts(text="a fiddle tune", duration=32.0, bpm=120.0))
    plan.form = form
    num = plan.meter.value[0]
    bar = num * TPQ
    decoded = symusic.Score(TPQ)
    for role, base in ((0, 72), (1, 64), (5, 48)):
        t = symusic.Track("", role, False)
        t.notes.extend(_n(b * bar + k * TPQ, TPQ, base + (b * 3 + k) % 7)
                       for b in range(16) for k in range(num))  # fmt: skip
        decoded.tracks.append(t)
    out = arrange(decoded, plan)
    melody = next(t for t in out.tracks if t.name.startswith("melody"))
    back = returns[0]

    def bars_of(first: int) -> list[tuple[int, int, int]]:
        return [(n.time - first * bar, n.duration, n.pitch) for n in melody.notes
                if first * bar <= n.time < (first + 3) * bar]  # fmt: skip

    assert bars_of(back.source) == bars_of(back.start)  # the last bar may close the piece
    chords = next(t for t in out.tracks if t.name == CHORDS_TRACK)
    assert len(chords.notes) == 0 and len(chords.lyrics) >= 4


def test_the_layout_comes_near_the_styles_share_of_recurring_windows():
    """Fiddle tunes repeat much, and so does the layout; Renaissance polyphony hardly at all,
    and the layout restates just the one phrase every piece of 16 bars or more returns to."""
    from composer.plan.form import RECURRENCE, _content

    shares = {}
    for style in ("renaissance", "fiddle"):
        bars = [BarPlan(i, i * 2.0, 1, None, i == 0) for i in range(32)]
        form = plan_form(bars, style=style, meter=(4, 4), bpm=120, instruments=[40, 41, 42],
                         texture=("free", False))  # fmt: skip
        shares[style] = recurring_share(_content(form.phrases, 32))
        assert any(p.source is not None and p.exact == 4 for p in form.phrases)
    assert abs(shares["fiddle"] - RECURRENCE["fiddle"]) <= 0.1, shares
    assert shares["renaissance"] == 6 / 31  # one four-bar return: 3 windows, and their source


def test_chord_symbols_reach_the_musicxml(tmp_path):
    from composer.arrange.arranger import chord_track
    from composer.music.notation import write_musicxml

    bar = 4 * TPQ
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    melody = symusic.Track("melody (Flute)", 73, False)
    melody.notes.extend(_n(b * bar, bar, 72) for b in range(3))
    score.tracks.append(melody)
    chords = [Chord(0, bar, 0, "maj"), Chord(bar, 2 * bar, 10, "maj"), Chord(2 * bar, 3 * bar,
              7, "7")]  # fmt: skip
    score.tracks.append(chord_track(chords))
    text = write_musicxml(score, tmp_path / "s.musicxml").read_text()
    assert text.count("<harmony") == 3
    assert "<kind>dominant</kind>" in text or "<kind>dominant-seventh</kind>" in text
    assert "<root-alter>-1</root-alter>" in text  # B flat, spelled as a flat
