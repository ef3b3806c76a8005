"""composer eval requests: batteries are read as written, and each attribute is measured on
the MIDI file (so a piece that misses is reported as missing)."""

from __future__ import annotations

from pathlib import Path

import pytest
import symusic

from composer.evaluate.craft import measure_craft
from composer.evaluate.requests import _check, eval_requests, read_battery
from composer.plan.planner import make_plan
from composer.plan.request import PromptFacts

TPQ = 24


def _score(velocities, *, bpm=120.0, program=48, drums=False, meter=(4, 4), key=(0, 0)):
    """One part of quarter notes at ``velocities``, optionally a drum part."""
    s = symusic.Score(TPQ)
    s.tempos.append(symusic.Tempo(0, bpm))
    s.time_signatures.append(symusic.TimeSignature(0, *meter))
    s.key_signatures.append(symusic.KeySignature(0, *key))
    part = symusic.Track("melody (x)", program, False)
    for i, v in enumerate(velocities):
        part.notes.append(symusic.Note(i * TPQ, TPQ, 60 + i % 5, v))
    s.tracks.append(part)
    if drums:
        kit = symusic.Track("percussion", 0, True)
        kit.notes.append(symusic.Note(0, TPQ, 36, 90))
        s.tracks.append(kit)
    return s


def _measure(attribute, value, score):
    parts = [t for t in score.tracks if not t.is_drum]
    plan = make_plan(None, PromptFacts(text="", duration=8.0))
    return _check(attribute, value, score, parts, sorted({t.program for t in parts}), plan)


def test_a_battery_line_with_words_in_a_value_and_a_repeated_attribute(tmp_path: Path):
    path = tmp_path / "b.tsv"
    path.write_text("# note\nfor flute and guitar in G major\tkey=G major instrument=73 "
                    "instrument=24\n")  # fmt: skip
    assert read_battery(path) == [
        ("for flute and guitar in G major", {"key": ["G major"], "instrument": ["73", "24"]})
    ]


@pytest.mark.parametrize(
    "attribute,value,score,met",
    [
        ("tempo", "fast", _score([80] * 16, bpm=150), True),
        ("tempo", "fast", _score([80] * 16, bpm=90), False),
        ("bpm", "150", _score([80] * 16, bpm=150), True),
        ("dynamics", "soft", _score([50, 60] * 8), True),
        ("dynamics", "soft", _score([90, 100] * 8), False),
        ("dynamics", "loud", _score([95, 100] * 8), True),
        ("dynamics", "building", _score(list(range(40, 120, 5))), True),
        ("dynamics", "fading", _score(list(range(40, 120, 5))), False),
        ("drums", "yes", _score([80] * 8, drums=True), True),
        ("drums", "no", _score([80] * 8, drums=True), False),
        ("meter", "6/8", _score([80] * 8, meter=(6, 8)), True),
        ("meter", "triple", _score([80] * 8, meter=(3, 4)), True),
        ("family", "strings", _score([80] * 8, program=48), True),
        ("family", "brass", _score([80] * 8, program=48), False),
        ("program", "45", _score([80] * 8, program=45), True),
        ("voices", "yes", _score([80] * 8, program=52), True),
        ("key", "D minor", _score([80] * 8, key=(-1, 1)), True),
        ("key", "D minor", _score([80] * 8, key=(2, 0)), False),
    ],
)  # fmt: skip
def test_each_attribute_is_measured_on_the_file(attribute, value, score, met):
    assert _measure(attribute, value, score)[1] is met


def test_an_attack_in_the_last_half_beat_is_caught(tmp_path: Path):
    plan = make_plan(None, PromptFacts(text="", duration=8.0, bpm=120.0))  # 4 bars of 4/4
    end = round(plan.duration.value * 2 * TPQ)  # ticks at 120 bpm
    good = _score([])
    good.tracks[0].notes.append(symusic.Note(end - 2 * TPQ, 2 * TPQ, 60, 80))
    late = good.copy()
    late.tracks[0].notes.append(symusic.Note(end - TPQ // 4, TPQ // 4, 62, 80))
    good.dump_midi(str(tmp_path / "good.mid"))
    late.dump_midi(str(tmp_path / "late.mid"))
    assert measure_craft(tmp_path / "good.mid", plan).ending_ok()
    craft = measure_craft(tmp_path / "late.mid", plan)
    assert craft.attack_in_last_half_beat and not craft.ending_ok()


def test_the_command_composes_and_reports(tiny_checkpoint, tmp_path: Path):
    battery = tmp_path / "b.tsv"
    battery.write_text("a slow waltz in D minor\tmeter=triple key=D minor tempo=slow\n")
    report = eval_requests(battery, duration=6, model=tiny_checkpoint, out=tmp_path / "out",
                           notation=False)  # fmt: skip
    (result,) = report.results
    assert result.met["key"] and result.met["meter"]  # explicit values hold with any decoder
    assert report.rate(explicit=True) == (1, 1)
    assert "stated qualities met" in (tmp_path / "out" / "requests.txt").read_text()
