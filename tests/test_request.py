"""Text requests: explicit values exactly, free text by meaning, nonsense ignored."""

from __future__ import annotations

import pytest

from composer.plan.request import parse_prompt


@pytest.mark.parametrize(
    "text,key,bpm,meter,duration,instruments,drums",
    [
        ("a slow chorale in D minor for strings", (2, "minor"), None, None, None, [48], None),
        ("jig in 6/8 with fiddle and harp, 45 seconds, no drums", None, None, (6, 8), 45.0,
         [40, 46], False),
        ("thriller cue for 1:30 in F# major, piano and cello", (6, "major"), None, None, 90.0,
         [0, 42], None),
        ("march at 120 bpm in B-flat major with trumpet and drums", (10, "major"), 120.0, None,
         None, [56], True),
        ("2 minutes of Eb minor in 5/4 for flute, oboe and bassoon", (3, "minor"), None, (5, 4),
         120.0, [73, 68, 70], None),
        ("Acoustic Grand Piano and String Ensemble 1 at 72.5 BPM", None, 72.5, None, None,
         [0, 48], None),
    ],
)  # fmt: skip
def test_explicit_values_are_exact(text, key, bpm, meter, duration, instruments, drums):
    f = parse_prompt(text)
    assert (f.key, f.bpm, f.meter, f.duration, f.instruments, f.drums) == (
        key, bpm, meter, duration, instruments, drums
    )  # fmt: skip
    assert f.notes  # each value says where it came from


def test_free_text_by_meaning():
    assert parse_prompt("a sacred hymn for church choir").style.name == "chorale"
    assert parse_prompt("a lively Irish reel").style.name == "fiddle"
    calm = parse_prompt("a gentle rocking lullaby").mood
    angry = parse_prompt("furious aggressive battle").mood
    assert calm.arousal < 0.3 < 0.8 < angry.arousal
    assert 0 < calm.confidence <= 1


def test_tempo_words_and_contradictions():
    f = parse_prompt("fast, at 40 bpm")
    assert f.bpm == 40.0 and f.tempo_range[0] > 100  # both recorded; the plan decides
    assert parse_prompt("very slow and sad").tempo_range == (40.0, 56.0)


@pytest.mark.parametrize("text", ["", "   ", "%%%!!", "?? ..", "x y"])
def test_empty_or_nonsense_says_nothing(text):
    f = parse_prompt(text)
    assert f.mood is None and f.style is None and f.key is None and f.instruments == []


def test_style_phrases_are_not_instruments():
    assert parse_prompt("a playful piano piece for guitar").instruments == [24]
    assert parse_prompt("a fiddle tune for clarinet").instruments == [71]
    assert parse_prompt("a piece for piano and fiddle").instruments == [0, 40]
