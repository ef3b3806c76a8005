"""A new tempo on a scored video: bars dropped or repeated between the cuts so that every cut
keeps its beat, the plan, markers and history following the bars."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import symusic

from composer.cli import main
from composer.edit.conform import conform, fits
from composer.edit.editor import accept, edit, load_score, redo, undo
from composer.errors import ComposerError
from composer.music.midi import bar_lines
from composer.types import Plan

TPQ = 480


@pytest.fixture(scope="module")
def scored(tiny_checkpoint, tmp_path_factory) -> Path:
    """composer's folder for a 21 s clip of three shots (cuts at 6.12 s and 14.44 s)."""
    from composer.pipeline import compose
    from composer.video.synthetic import Shot, make_clip

    root = tmp_path_factory.mktemp("scored")
    clip = make_clip(root / "clip.mp4", [Shot(6.1), Shot(8.3), Shot(6.6)], size=(160, 90))
    return compose(clip, "", root / "out", model=tiny_checkpoint).outdir


@pytest.fixture
def folder(scored: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(scored, tmp_path / "out"))


def _plan(folder: Path) -> Plan:
    return Plan.from_dict(json.loads((folder / "plan.json").read_text())["plan"])


def _bars(score: symusic.Score) -> list[tuple]:
    """Each bar's pitched notes as (pitch, onset in the bar, velocity); a note played a 32nd
    early is its bar's."""
    lines, early = bar_lines(score), score.ticks_per_quarter // 8
    out = []
    for a, b in zip(lines, lines[1:], strict=False):
        out.append(tuple(sorted((n.pitch, n.time - a, n.velocity) for t in score.tracks
                                if not t.is_drum for n in t.notes
                                if a <= n.time + early < b)))  # fmt: skip
    return out


def test_a_new_tempo_keeps_every_cut_on_its_beat_and_undo_brings_the_plan_back(folder: Path):
    before, plan = load_score(folder / "score.mid"), _plan(folder)
    original = {n: (folder / n).read_bytes() for n in ("score.mid", "plan.json")}
    cuts = [h.time for h in plan.hit_points if h.kind == "cut"]
    assert len(cuts) == 2 and fits(before, plan)

    res = edit(folder, tempo=80)
    note = next(n for n in res.notes if n.startswith("--tempo 80"))
    assert "dropped" in note and "between the cuts, so each keeps its beat" in note
    assert folder / "plan.json" in res.files and folder / "video.mp4" in res.files
    after, new = load_score(folder / "score.mid"), _plan(folder)
    unit = after.ticks_per_quarter * 4 // new.meter.value[1]
    bar = new.meter.value[0] * unit
    assert fits(after, new) and len(new.bars) < len(plan.bars)
    assert [h.time for h in new.hit_points] == [h.time for h in plan.hit_points]
    seconds = after.to("second")
    for h in new.hit_points:  # each cut's marker on its beat, where the tempo map puts the cut
        text = f"cut 00:{h.time:05.2f}"
        assert symusic.TextMeta(h.bar * bar + h.beat * unit, text) in after.markers
        timed = next(m.time for m in seconds.markers if m.text == text)
        assert timed == pytest.approx(h.time, abs=0.002)
    music = max(n.end for t in seconds.tracks for n in t.notes)
    assert music == pytest.approx(new.duration.value, abs=0.01)  # it ends with the video
    assert all(abs(s.bpm / 80 - 1) < 0.3 for s in new.tempo_map)
    # Every bar is one of the bars it was, in order: only whole bars were dropped.
    old_bars, new_bars = _bars(before)[: len(plan.bars)], _bars(after)[: len(new.bars)]
    assert len(set(old_bars)) > 3 and new_bars[0] == old_bars[0]
    assert new_bars[-1] == old_bars[-1]
    place = 0
    for b in new_bars[:-1]:
        place = old_bars.index(b, place) + 1
    # Undo brings back the exact bytes of the score and of the plan; redo the edit's.
    edited = {n: (folder / n).read_bytes() for n in original}
    undo(folder)
    assert {n: (folder / n).read_bytes() for n in original} == original
    redo(folder)
    assert {n: (folder / n).read_bytes() for n in original} == edited


def test_a_faster_tempo_repeats_bars_and_a_preview_carries_its_plan(folder: Path):
    plan = _plan(folder)
    res = edit(folder, tempo=130, preview=True)
    assert any("played twice" in n for n in res.notes)
    assert (folder / "plan.json").read_bytes() == (folder / "versions/000/plan.json").read_bytes()
    waiting = json.loads((folder / "candidates/1/plan.json").read_text())["plan"]
    assert len(waiting["bars"]) > len(plan.bars)
    accept(folder, 1)
    assert _plan(folder).to_dict() == waiting
    assert fits(load_score(folder / "score.mid"), _plan(folder))


def test_a_tempo_the_cuts_hold_already_is_refused_in_one_line(folder: Path, capsys):
    now = _plan(folder).tempo_map[-1].bpm  # after the last cut; the ones before keep theirs
    assert main(["edit", str(folder), "--tempo", f"{now:g}"]) == 1
    err = capsys.readouterr().err
    assert "cannot move the tempo nearer" in err and err.count("\n") == 1
    assert not (folder / "edit_history.json").exists()


def _laid(plan: Plan, pitches: list[int]) -> symusic.Score:
    """A score on ``plan``'s bars: bar b a whole-bar note of ``pitches[b]`` with a fifth above,
    and one note held from bar 1 through bar 2."""
    num, den = plan.meter.value
    bar = num * TPQ * 4 // den
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, num, den))
    t = symusic.Track("melody (Flute)", 73, False)
    for b, p in enumerate(pitches):
        t.notes.extend([symusic.Note(b * bar, bar, p, 80), symusic.Note(b * bar, bar, p + 7, 70)])
    t.notes.append(symusic.Note(bar, 2 * bar, 48, 60))
    s.tracks.append(t)
    return s


def test_bars_are_dropped_where_the_seam_joins_bars_that_sound_alike():
    from composer.plan.planner import make_plan
    from composer.plan.request import PromptFacts

    plan = dataclasses.replace(make_plan(None, PromptFacts(text="", duration=20.0)), form=None)
    n = len(plan.bars)
    assert n >= 7
    pitches = [60 + b for b in range(n)]
    pitches[5] = pitches[2]  # bar 6 sounds like bar 3: dropping bars 3-5 leaves a smooth seam
    score = _laid(plan, pitches)
    slower = plan.tempo.value * (n - 3) / n * 1.02  # n - 3 bars end a little early
    out = conform(score, plan, slower)
    assert "bars 3-5 dropped" in out.note and out.plan.tempo.value == slower
    assert "the last chord held" in out.note
    last = max(n.end for n in out.score.to("second").tracks[0].notes)
    assert last == pytest.approx(plan.duration.value, abs=0.01)  # held to the video's end
    kept = [0, 1, *range(5, n)]
    assert [max(b)[0] - 7 for b in _bars(out.score)[: n - 3]] == [pitches[b] for b in kept]
    held = next(n for n in out.score.tracks[0].notes if n.pitch == 48)
    assert held.duration == bar_lines(out.score)[1]  # the bar after it is gone: held one bar
    assert out.score.time_signatures[0].numerator == plan.meter.value[0]
    assert len(out.plan.bars) == n - 3 and [b.index for b in out.plan.bars] == list(range(n - 3))


def test_a_score_off_its_plan_is_not_conformed():
    from composer.plan.planner import make_plan
    from composer.plan.request import PromptFacts

    plan = make_plan(None, PromptFacts(text="", duration=20.0))
    score = _laid(plan, [60] * len(plan.bars))
    score.time_signatures.append(symusic.TimeSignature(TPQ * 8, 3, 4))
    assert not fits(score, plan)
    with pytest.raises(ComposerError, match="cannot set the tempo"):
        conform(_laid(plan, [60] * len(plan.bars)), plan, 1000)
