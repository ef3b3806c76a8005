"""Perform (velocities, accents on hits, expression) and the arranger's ending."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

from composer.arrange.arranger import arrange
from composer.arrange.ending import close
from composer.music.words import pulse_ticks
from composer.perform import perform
from composer.plan.planner import make_plan
from composer.plan.request import PromptFacts
from composer.types import Choice, HitPoint, Plan

TPQ = 480
METERS = [(4, 4), (3, 4), (6, 8)]
DYNAMICS = ["soft", "medium", "loud", "building", "fading"]


def _plan(meter=(4, 4), dynamics="medium", drums=False, hits=(), seed=0, programs=(73, 48, 0, 32)):
    """A 40 s plan without a video; ``hits``: (bar, beat in the meter's unit) of strong cuts."""
    plan = make_plan(None, PromptFacts(text="", meter=meter, duration=40.0, bpm=96.0), seed=seed)
    plan.dynamics = Choice(dynamics, "prompt", "test")
    plan.drums = Choice(drums, "prompt", "test")
    plan.instruments = Choice(list(programs), "prompt", "test")
    for i, bar in enumerate(plan.bars):
        bar.intensity = (1, 2, 2, 3, 1, 0)[i % 6]
        bar.section = i % 8 == 0
    num, den = meter
    seconds_per_unit = 60.0 / (plan.tempo.value * den / 4)
    for bar, beat in hits:
        t = (bar * num + beat) * seconds_per_unit
        plan.hit_points.append(HitPoint(t, "cut", bar, beat, t, beat == 0))
        plan.bars[bar].hit = beat or None
    return plan


def _score(plan: Plan, drums: bool = False, rest_bar: int | None = None) -> symusic.Score:
    """An arranged-looking score: melody in eighths and quarters, a harmony voice in long
    notes, piano chords, a bass on each beat; ``rest_bar``: a bar where every voice rests."""
    num, den = plan.meter.value
    unit = TPQ * 4 // den
    bar = num * unit
    score = symusic.Score(TPQ)
    score.tempos.append(symusic.Tempo(0, float(plan.tempo.value)))
    score.time_signatures.append(symusic.TimeSignature(0, num, den))
    names = ["melody (Flute)", "harmony1 (String Ensemble 1)", "harmony2 (Piano)", "bass (Bass)"]
    programs = plan.instruments.value
    tracks = [symusic.Track(n, p, False) for n, p in zip(names, programs, strict=True)]
    rhythm = [unit // 2, unit // 2, unit, unit * 2] if den == 4 else [unit, unit * 2]
    for b in range(len(plan.bars)):
        if b == rest_bar:
            continue
        start, t, k = b * bar, b * bar, 0
        while t < start + bar:  # melody
            d = min(rhythm[(k + b) % len(rhythm)], start + bar - t)
            tracks[0].notes.append(symusic.Note(t, d, 72 + (k * 2 + b) % 7, 95))
            t, k = t + d, k + 1
        long = bar if num == 3 else bar // 2
        for t in range(start, start + bar, long):  # held harmony and piano chords
            tracks[1].notes.append(symusic.Note(t, long, 64 + b % 3, 95))
            for p in (55, 60, 64):
                tracks[2].notes.append(symusic.Note(t, long, p + b % 2, 95))
        for t in range(start, start + bar, unit * (3 if den == 8 else 1)):  # bass
            tracks[3].notes.append(symusic.Note(t, unit, 36 + b % 5, 95))
    score.tracks.extend(tracks)
    if drums:
        kit = symusic.Track("percussion", 0, True)
        for t in range(0, len(plan.bars) * bar, unit):
            kit.notes.append(symusic.Note(t, unit // 2, 42, 80))
        score.tracks.append(kit)
    return score


def _pitched(score: symusic.Score) -> list[symusic.Track]:
    return [t for t in score.tracks if not t.is_drum and not t.name.startswith("hits")]


def _velocities(score: symusic.Score) -> np.ndarray:
    """Pitched velocities in onset order."""
    notes = sorted((n.time, n.velocity) for t in _pitched(score) for n in t.notes)
    return np.array([v for _, v in notes], dtype=float)


@pytest.mark.parametrize("meter", METERS)
@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_spread_and_stated_dynamics(meter, dynamics):
    for drums, hits in ((False, [(3, 0), (6, 1)]), (True, [])):
        plan = _plan(meter, dynamics, drums, hits)
        vel = _velocities(perform(_score(plan, drums), plan))
        assert vel.std() >= 8, (drums, vel.std())
        assert vel.min() >= 1 and vel.max() <= 127
        quarter = len(vel) // 4
        rise = vel[-quarter:].mean() - vel[:quarter].mean()
        if dynamics == "soft":
            assert vel.mean() <= 60
        elif dynamics == "loud":
            assert vel.mean() >= 92
        elif dynamics == "building":
            assert rise >= 15
        elif dynamics == "fading":
            assert rise <= -15


@pytest.mark.parametrize("meter", METERS)
@pytest.mark.parametrize("dynamics", ["soft", "loud", "building"])
def test_hits_accented_in_every_voice_without_drums(meter, dynamics):
    num = meter[0]
    hits = [(2, 0), (5, num - 1), (9, 1)]  # a downbeat, the last beat, a beat inside a held note
    plan = _plan(meter, dynamics, hits=hits)
    out = perform(_score(plan), plan).to("second")
    bar_starts = [b.start for b in plan.bars] + [plan.duration.value]
    for h in plan.hit_points:
        lo, hi = bar_starts[h.bar], bar_starts[h.bar + 1]
        bar_vel = [n.velocity for t in _pitched(out) for n in t.notes if lo <= n.time < hi]
        mean, accented = np.mean(bar_vel), 0
        for track in _pitched(out):
            on = [n.velocity for n in track.notes if abs(n.time - h.score_time) <= 0.05]
            # A voice that sounds on the hit attacks it (held notes are re-struck); a voice
            # resting there stays silent.
            sounding = any(n.time < h.score_time < n.end for n in track.notes)
            assert on or not sounding, (h, track.name)
            assert not on or min(on) >= mean + 15, (h, track.name, on, mean)
            accented += bool(on)
        assert accented >= 3, h


def test_hits_swell_but_are_not_accented_with_drums():
    plan = _plan(hits=[(4, 0)], drums=True)
    out = perform(_score(plan, drums=True), plan)
    plain = perform(_score(plan, drums=True), _plan(drums=True))
    hit = 4 * 4 * TPQ

    def before(score: symusic.Score) -> list[int]:
        return [n.velocity for n in score.tracks[0].notes if hit - 2 * TPQ <= n.time < hit]

    assert before(out)[-1] >= before(plain)[-1] + 5  # the crescendo into it
    on = [n.velocity for t in _pitched(out) for n in t.notes if n.time == hit]
    assert max(on) <= max(n.velocity for t in _pitched(plain) for n in t.notes if n.time == hit) + 2
    # Nothing is re-struck: the notes are the input's.
    count = [sum(len(t.notes) for t in s.tracks) for s in (out, _score(plan, drums=True))]
    assert count[0] == count[1]


def test_a_general_pause_on_a_hit_gets_a_chord():
    plan = _plan(hits=[(5, 0)])
    score = _score(plan, rest_bar=5)
    out = perform(score, plan)
    hit = 5 * 4 * TPQ
    for track in _pitched(out):
        on = [n for n in track.notes if n.time == hit]
        assert on and all(n.duration <= TPQ for n in on), track.name


def test_drums_scaled_by_level():
    soft, loud = (
        perform(_score(p, drums=True), p)
        for p in (_plan(dynamics="soft", drums=True), _plan(dynamics="loud", drums=True))
    )
    kit = [np.mean([n.velocity for n in s.tracks[-1].notes]) for s in (soft, loud)]
    assert kit[0] < 80 < kit[1]
    assert [n.time for n in soft.tracks[-1].notes] == [n.time for n in loud.tracks[-1].notes]


def test_expression_on_sustained_instruments_only():
    plan = _plan()
    out = perform(_score(plan), plan)
    by_name = {t.name.split(" ")[0]: t for t in out.tracks}
    cc = [c for c in by_name["harmony1"].controls if c.number == 11]
    values = [c.value for c in cc]
    assert len(cc) > 10 and 60 <= min(values) < max(values) <= 127
    assert all(a.time < b.time for a, b in zip(cc, cc[1:], strict=False))
    for role in ("harmony2", "bass"):  # piano and plucked bass
        assert not by_name[role].controls
    assert by_name["melody"].controls  # flute: a wind


def test_deterministic_and_input_untouched():
    plan = _plan(hits=[(3, 0), (7, 2)])
    score = _score(plan)
    before = score.dumps_midi()
    first, second = perform(score, plan).dumps_midi(), perform(score, plan).dumps_midi()
    assert first == second
    assert score.dumps_midi() == before
    plan.seed = 1
    assert perform(score, plan).dumps_midi() != first


# --- the ending (composer.arrange.ending) -------------------------------------------------


def _check_ending(voices, end, beat):
    """No attack in the final half-beat; each voice sounds from the final chord to ``end``,
    at least a beat; nothing past ``end``."""
    out = close(voices, end, beat)
    starts = []
    for before, after in zip(voices, out, strict=True):
        if not before:
            assert not after
            continue
        assert max(n.time + n.duration for n in after) == end
        assert all(n.time + n.duration <= end for n in after)
        assert not [n for n in after if end - beat // 2 <= n.time]
        last = max(n.time for n in after)
        assert all(n.time + n.duration == end for n in after if n.time == last)
        starts.append(min(n.time for n in after if n.time + n.duration == end))
    chord = max(starts)
    assert end - chord >= beat
    for notes in out:  # no attack after the final chord; the rest ends at it
        assert all(n.time <= chord for n in notes)
        assert all(n.time + n.duration <= chord or n.time + n.duration == end for n in notes)
    return out


def _notes(*spec):
    return [symusic.Note(t, d, p, 90) for t, d, p in spec]


def test_ending_moves_a_late_chord_to_the_beat():
    q, end = TPQ, 8 * TPQ  # two bars of 4/4
    melody = _notes((0, 4 * q, 72), (4 * q, 3 * q + q // 2, 74), (7 * q + q // 2, q // 2, 72))
    bass = _notes((0, 4 * q, 48), (4 * q, 2 * q, 43), (6 * q, 2 * q, 48))
    out = _check_ending([melody, bass], end, q)
    assert [(n.time, n.pitch) for n in out[0]][-1] == (7 * q, 72)
    assert (6 * q, 48) in [(n.time, n.pitch) for n in out[1]]


def test_ending_brings_a_resting_voice_into_the_final_chord():
    q, end = TPQ, 6 * TPQ  # two bars of 3/4
    melody = _notes((0, 3 * q, 79), (3 * q, 2 * q, 74), (5 * q + q // 2, q // 2, 76))
    inner = _notes((0, q, 66), (q, q, 65))  # rests from beat 2
    bass = _notes((0, 3 * q, 41), (3 * q, 3 * q, 48))
    out = _check_ending([melody, inner, bass, []], end, pulse_ticks(3, 4, TPQ))
    assert [(n.time, n.pitch) for n in out[1]][-1] == (5 * q, 64)  # E, the nearest chord tone


def test_ending_of_chords_in_compound_meter():
    e, end = TPQ // 2, 12 * TPQ // 2  # two bars of 6/8
    beat = pulse_ticks(6, 8, TPQ)
    assert beat == 3 * e
    chords = _notes(*[(t, e, p) for t in range(0, 11 * e, e) for p in (60, 64)], (11 * e, e, 67))
    bass = _notes((0, 6 * e, 36), (6 * e, 5 * e, 31), (11 * e, e, 36))
    out = _check_ending([chords, bass], end, beat)
    assert {n.pitch for n in out[0] if n.time + n.duration == end} == {67}
    assert out[1][-1].time == 9 * e and out[1][-1].pitch == 36


def test_ending_held_to_an_end_off_the_bar_line():
    q = TPQ
    end = 9 * q + q // 3  # an explicit tempo: whole bars stop short of the video's end
    melody = _notes((0, 4 * q, 72), (4 * q, 4 * q, 71), (8 * q, q, 72))
    bass = _notes((0, 8 * q, 48), (8 * q, q, 36), (9 * q, q, 38))  # a stray past the bars
    out = _check_ending([melody, bass], end, q)
    assert out[0][-1].time == 8 * q and out[1][-1].pitch == 38


@pytest.mark.parametrize("meter", METERS)
@pytest.mark.parametrize("duration", [21.3, 40.0])
def test_arranged_scores_end_on_a_held_chord(meter, duration):
    """Through the arranger: an explicit tempo leaves the end off the bar line (21.3 s)."""
    plan = make_plan(None, PromptFacts(text="", meter=meter, duration=duration, bpm=97.0))
    plan.instruments = Choice([73, 48, 0, 32], "prompt", "test")
    decoded = _score(plan)
    for role, track in zip((0, 1, 2, 5), decoded.tracks, strict=True):
        track.program = role  # the decoder's tracks are roles
    bars_end, unit = len(plan.bars) * meter[0] * TPQ * 4 // meter[1], TPQ * 4 // meter[1]
    decoded.tracks[0].notes.append(symusic.Note(bars_end - unit // 2, unit // 2, 74, 95))
    out = arrange(decoded, plan)
    parts = [t for t in out.tracks if len(t.notes)]  # the chord symbols' track has none
    assert len(parts) == 4
    end, beat = max(t.end() for t in parts), pulse_ticks(*meter, TPQ)
    assert end >= bars_end
    for track in parts:
        assert track.end() == end
        assert all(n.time <= end - beat for n in track.notes), track.name
