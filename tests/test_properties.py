"""Properties that hold for every input, checked on generated ones (hypothesis): the tokenizer
gives back the notes it was given, and a plan always covers its music with whole bars in range."""

from __future__ import annotations

import pytest
import symusic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.config import limits
from composer.plan.planner import STRONG_CUT, make_plan
from composer.plan.request import PromptFacts
from composer.tokens import ScoreTokenizer, TokenizerSpec
from composer.types import Brief, Event, Mood, Pacing, SceneNote

TPQ = 480
METERS = [(n, d) for d, ns in TokenizerSpec().meters for n in ns]
ROLES = (0, 1, 2, 5)  # melody, two inner voices, bass
# Derandomised and without an example database: the same cases every run, nothing written.
PROFILE = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None
)


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer()


@st.composite
def scores(draw) -> tuple[symusic.Score, tuple[int, int]]:
    """A score in one meter of the vocabulary, each role a line of notes that never overlap and
    stay inside the bars, on a grid of quarter beats (the vocabulary has 12 positions a beat:
    in 2/2 a quarter beat is an eighth note, in 6/8 a thirty-second)."""
    num, den = draw(st.sampled_from(METERS))
    bar = num * TPQ * 4 // den
    step = TPQ * 4 // den // 4
    bars = draw(st.integers(1, 4))
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, num, den))
    for role in draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=4, unique=True)):
        track = symusic.Track(f"r{role}", role, False)
        t = draw(st.integers(0, bar // step - 1)) * step
        while t < bars * bar:
            length = draw(st.sampled_from([1, 2, 3, 4, 6, 8])) * step
            length = min(length, bars * bar - t)
            pitch = draw(st.integers(36, 96))
            track.notes.append(symusic.Note(t, length, pitch, draw(st.integers(40, 120))))
            t += length + draw(st.sampled_from([0, 0, step, 2 * step]))
        score.tracks.append(track)
    return score, (num, den)


@settings(max_examples=60, **PROFILE)
@given(case=scores(), key=st.sampled_from([(0, "major"), (9, "minor"), (6, "major")]))
def test_tokenizer_round_trip_keeps_every_note(tok, case, key):
    score, _ = case
    ids = tok.encode(score, "folk", key)
    back = tok.decode(ids)
    names = tok.spec.roles

    def notes(s: symusic.Score, t: symusic.Track) -> list[tuple[float, int, float]]:
        """(onset, pitch, duration) in quarter notes."""
        q = s.ticks_per_quarter
        return sorted((n.time / q, n.pitch, n.duration / q) for n in t.notes)

    sent = {t.program: notes(score, t) for t in score.tracks if len(t.notes)}
    got = {names.index(t.name): notes(back, t) for t in back.tracks}
    assert got == sent


def bar_line_after(plan, bar: int) -> float:
    """Seconds at the bar line that ends ``bar``, through the plan's tempo map."""
    num, den = plan.meter.value
    beats = (bar + 1) * num * 4 / den  # in quarter notes
    seg = plan.tempo_map[0]
    for s in plan.tempo_map:
        if s.beat * 4 / den <= beats:
            seg = s
    return seg.start + (beats - seg.beat * 4 / den) * 60 / seg.bpm


@st.composite
def briefs(draw, duration: float) -> Brief | None:
    if draw(st.booleans()):
        return None
    cuts = sorted(draw(st.lists(st.floats(0.3, duration - 0.3), max_size=12, unique=True)))
    events = [Event(round(t, 3), "cut", draw(st.floats(0.0, 1.0))) for t in cuts]
    bounds = [0.0, *[e.time for e in events], duration]
    scenes = [SceneNote(a, b, "") for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    lo = draw(st.floats(50, 150))
    return Brief(
        mood=Mood(draw(st.floats(0, 1)), draw(st.floats(0, 1)), ["calm"]),
        pacing=Pacing(0.5, lo, lo + draw(st.floats(0, 40))),
        events=events, scenes=scenes, reasoning=[], duration=duration, describer="signal",
    )  # fmt: skip


@pytest.mark.parametrize("meter", [(7, 8), (5, 4), (3, 8), (4, 4), (12, 8)])
def test_a_short_piece_at_a_free_tempo_ends_on_its_last_bar_line(meter):
    """Whole bars fill a short piece: the tempo fit eases the middle of the range by 8% at
    most, so where that cannot end on a bar line the planner picks a tempo that does (a 2 s
    bar of 7/8 once ran to 2.28 s)."""
    for tenths in range(20, 120, 3):
        plan = make_plan(None, PromptFacts(text="", meter=meter, duration=tenths / 10))
        end = bar_line_after(plan, len(plan.bars) - 1)
        assert end == pytest.approx(tenths / 10, abs=0.05), (meter, tenths / 10)


@settings(max_examples=80, **PROFILE)
@given(data=st.data())
def test_a_plan_fills_its_duration_with_whole_bars_in_range(data):
    duration = data.draw(st.floats(2.0, 240.0))
    brief = data.draw(briefs(duration))
    facts = PromptFacts(
        text="",
        meter=data.draw(st.none() | st.sampled_from(METERS)),
        bpm=data.draw(st.none() | st.floats(limits().min_bpm, limits().max_bpm)),
        duration=None if brief else duration,
    )
    plan = make_plan(brief, facts, seed=data.draw(st.integers(0, 3)))
    bound = limits()
    num, den = plan.meter.value
    assert plan.bars and plan.bars[0].start == 0.0
    starts = [b.start for b in plan.bars]
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    # Whole bars end by the end (one bar may be longer than a very short piece at a slow
    # explicit tempo); with a free tempo and no cuts to hold, the last bar line is the end.
    end = bar_line_after(plan, len(plan.bars) - 1)
    assert end <= duration + 0.05 or len(plan.bars) == 1
    if facts.bpm is None and not (brief and brief.events):
        assert end == pytest.approx(duration, abs=0.05)
    for seg in plan.tempo_map:
        assert bound.min_bpm * 0.84 <= seg.bpm <= bound.max_bpm * 1.16
    if facts.bpm is not None:
        assert [s.bpm for s in plan.tempo_map] == [pytest.approx(facts.bpm, abs=1e-3)]
    for hit in plan.hit_points:
        assert 0 <= hit.bar < len(plan.bars) and 0 <= hit.beat < num
    strong = [e.time for e in (brief.events if brief else []) if e.strength >= STRONG_CUT]
    assert {h.time for h in plan.hit_points} | set(plan.unplaced) <= set(strong)
    assert all(0 <= b.intensity <= 3 for b in plan.bars)
