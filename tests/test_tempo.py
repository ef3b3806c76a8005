"""Tempo fitting: strong cuts land on bar lines or beats, tempo changes stay gentle."""

from __future__ import annotations

import numpy as np
import pytest

from composer.plan.tempo import fit_tempo


def errors_ms(fit, cuts):
    return [abs(fit.time_of(fit.cut_beats[c]) - c) * 1000 for c in cuts]


@pytest.mark.parametrize("cuts", [[6.0, 12.0], [1.0, 6.0], [3.754, 8.759]])
def test_one_tempo_when_it_fits(cuts):
    fit = fit_tempo(cuts, (80, 120), 4)
    assert len(fit.segments) == 1 and 80 <= fit.tempo <= 120
    assert max(errors_ms(fit, cuts)) <= 20


def test_tempo_map_puts_irregular_cuts_on_the_grid_with_gentle_changes():
    rng = np.random.default_rng(3)
    cuts = list(np.cumsum(rng.uniform(2.5, 7.0, size=10)).round(3))
    fit = fit_tempo(cuts, (90, 110), 4)
    assert not fit.unplaced
    assert max(errors_ms(fit, cuts)) < 1
    bpms = [s.bpm for s in fit.segments]
    changes = [abs(b / a - 1) for a, b in zip(bpms, bpms[1:], strict=False)]
    assert max(changes) <= 0.08 + 1e-9
    assert all(90 * 0.92 <= b <= 110 * 1.08 for b in bpms)
    # Beats and times invert each other across segments.
    for beat in (0.0, 7.5, 21.0, 40.25):
        assert fit.beat_at(fit.time_of(beat)) == pytest.approx(beat)


def test_cuts_too_close_for_a_gentle_change_are_reported():
    fit = fit_tempo([2.0, 2.3, 2.6, 8.0, 8.35], (100, 100.5), 4)
    assert fit.unplaced
    assert set(fit.unplaced) | set(fit.cut_beats) == {2.0, 2.3, 2.6, 8.0, 8.35}


def test_a_firmer_change_at_a_cut_rather_than_a_cut_off_the_grid():
    # 4 beats to the first cut means 109 bpm; the 1.72 s shot then needs a change of 9-10%.
    cuts = [2.2, 5.32, 7.04, 11.64]
    fit = fit_tempo(cuts, (100.0, 124.0), 4, end=14.04)
    assert not fit.unplaced and max(errors_ms(fit, cuts)) < 1
    bpms = [s.bpm for s in fit.segments]
    assert max(abs(b / a - 1) for a, b in zip(bpms, bpms[1:], strict=False)) <= 0.16 + 1e-9


def test_bars_cover_the_duration():
    fit = fit_tempo([], (120, 120), 4)
    assert fit.tempo == 120 and fit.bars_for(16.0) == 8 and fit.bars_for(16.1) == 9


def test_last_bar_line_lands_on_the_end():
    fit = fit_tempo([2.3, 5.1, 9.7], (100, 124), 4, end=16.0)
    bars = fit.bars_for(16.0)
    assert fit.time_of(bars * 4) == pytest.approx(16.0, abs=1e-3)
    one = fit_tempo([], (100, 110), 3, end=10.0)  # one tempo, eased to end on a bar line
    assert one.time_of(one.bars_for(10.0) * 3) == pytest.approx(10.0, abs=1e-3)


def test_easing_the_end_keeps_the_cuts_in_place():
    cuts = [4.0, 6.0, 12.0]
    fit = fit_tempo(cuts, (112, 136), 4, end=15.8)  # one tempo for the cuts, eased after
    assert max(errors_ms(fit, cuts)) < 1 and len(fit.segments) == 2
    assert fit.time_of(fit.bars_for(15.8) * 4) == pytest.approx(15.8, abs=1e-3)
    # No gentle change reaches a bar line (3 s bars): the cuts still keep their places.
    fit = fit_tempo(cuts, (112, 136), 6, end=16.0)
    assert max(errors_ms(fit, cuts)) < 1


def test_an_early_cut_and_a_later_one_both_on_the_grid():
    # A cut 1 s in, a slow mood, then a cut 5 s later (the shared test video's pattern).
    cuts = [1.001, 6.006]
    fit = fit_tempo(cuts, (63.2, 87.2), 4, end=24.0)
    assert not fit.unplaced and max(errors_ms(fit, cuts)) < 1
