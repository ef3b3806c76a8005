"""Text requests: explicit values exactly, free text by meaning, nonsense ignored."""

from __future__ import annotations

import pytest

from composer.errors import ComposerError
from composer.plan.planner import make_plan
from composer.plan.request import PromptFacts, parse_prompt


@pytest.mark.parametrize(
    "text,key,bpm,meter,duration,instruments,drums",
    [
        ("a slow chorale in D minor for a cello", (2, "minor"), None, None, None, [42], None),
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


def _ignored(f):
    return {i.words: i.why for i in f.ignored}


@pytest.mark.parametrize("text", ["an all-night 24/7 diner", "a cue in 11/16", "a cue in 3/0"])
def test_a_fraction_composer_cannot_write_is_not_a_meter(text):
    f = parse_prompt(text)
    assert f.meter is None
    make_plan(None, f)  # no KeyError, no ZeroDivisionError
    if "24/7" in text:
        assert f.ignored == [] and "24/7" in f.rest  # words, not a meter
    else:
        (why,) = _ignored(f).values()
        assert "not a meter composer can write" in why and "3/4" in why


def test_a_meter_composer_writes_is_read():
    assert parse_prompt("a reel in 7/8 time").meter == (7, 8)
    assert parse_prompt("6/8, for fiddle").meter == (6, 8)


@pytest.mark.parametrize(
    "facts",
    [PromptFacts("", meter=(3, 0)), PromptFacts("", meter=(11, 16)), PromptFacts("", bpm=0.0),
     PromptFacts("", bpm=900.0), PromptFacts("", tempo_range=(0.0, 0.0)),
     PromptFacts("", duration=-5.0), PromptFacts("", duration=0.0),
     PromptFacts("", duration=float("nan")), PromptFacts("", duration=1e5)],
)  # fmt: skip
def test_plan_refuses_impossible_values_built_by_hand(facts):
    with pytest.raises(ComposerError) as e:
        make_plan(None, facts)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "text,era",
    [("70s disco", "1970s"), ("music from the '70s", "1970s"), ("the 70s", "1970s"),
     ("a 1990s sitcom", "1990s"), ("1990s", "1990s"), ("80's synth pop", "1980s"),
     ("a 60s-style spy theme", "1960s"), ("the nineties", "1990s"), ("30s music", "1930s")],
)  # fmt: skip
def test_decades_are_eras(text, era):
    f = parse_prompt(text)
    assert (f.era, f.duration) == (era, None)
    assert any("era" in n for n in f.notes)


@pytest.mark.parametrize(
    "text,seconds",
    [("a 30s clip", 30.0), ("30s of music", 30.0), ("a jig for 45s", 45.0),
     ("30 seconds", 30.0), ("1 minute 30 seconds", 90.0), ("1:30", 90.0), ("2 mins", 120.0)],
)  # fmt: skip
def test_seconds_are_durations(text, seconds):
    f = parse_prompt(text)
    assert (f.duration, f.era) == (seconds, None)


@pytest.mark.parametrize(
    "text,key",
    [("with a minor twist", None), ("a major motion picture", None),
     ("a nocturne in A minor", (9, "minor")), ("an A minor key lament", (9, "minor")),
     ("in the key of a major", (9, "major")), ("F# minor", (6, "minor")),
     ("Bb major", (10, "major")), ("D minor", (2, "minor")), ("c minor", (0, "minor"))],
)  # fmt: skip
def test_a_key_is_not_an_article(text, key):
    assert parse_prompt(text).key == key


@pytest.mark.parametrize("text", ["in H major", "a waltz in X minor"])
def test_a_letter_that_is_no_note_is_ignored_with_a_reason(text):
    f = parse_prompt(text)
    assert f.key is None
    (why,) = _ignored(f).values()
    assert "not a note name" in why and "German H is B" in why


@pytest.mark.parametrize("text", ["-5 seconds", "0 seconds", "a 5 hours drone"])
def test_impossible_durations_are_ignored_with_a_reason(text):
    f = parse_prompt(text)
    assert f.duration is None and len(f.ignored) == 1


def test_the_longest_duration_is_a_limit_you_can_raise(monkeypatch):
    why = parse_prompt("5 hours").ignored[0].why
    assert "longer than the 30 min composer writes" in why and "COMPOSER_MAX_DURATION_S" in why
    monkeypatch.setenv("COMPOSER_MAX_DURATION_S", "36000")
    assert parse_prompt("5 hours").duration == 18000.0


def test_a_range_is_not_a_negative_duration():
    assert parse_prompt("2-5 minutes").duration == 300.0


@pytest.mark.parametrize("text", ["at 0 bpm", "at 900 bpm", "at 5 bpm", "-120 bpm", "1000.5 bpm"])
def test_tempi_outside_the_limits_are_ignored_with_a_reason(text):
    f = parse_prompt(text)
    assert f.bpm is None
    (why,) = _ignored(f).values()
    assert "20-300 bpm" in why


def test_tempi_inside_the_limits_are_read():
    assert parse_prompt("at 300 bpm").bpm == 300.0
    assert parse_prompt("at 20.5 bpm").bpm == 20.5


@pytest.mark.parametrize(
    "text,field,first",
    [("in C major and D minor", "key", (0, "major")), ("a 3/4 waltz in 7/8", "meter", (3, 4)),
     ("72 bpm, no, 90 bpm", "bpm", 72.0), ("30 seconds or 2 minutes", "duration", 30.0),
     ("no drums, with percussion", "drums", False)],
)  # fmt: skip
def test_the_first_of_two_values_wins_and_the_conflict_is_recorded(text, field, first):
    f = parse_prompt(text)
    assert getattr(f, field) == first
    assert len(f.conflicts) == 1


def test_the_same_value_twice_is_no_conflict():
    assert parse_prompt("3/4 waltz in 3/4 time").conflicts == []


def test_an_overlong_request_is_refused(monkeypatch):
    with pytest.raises(ComposerError, match="is 2001 characters long; the longest composer reads"):
        parse_prompt("a" * 2001)
    monkeypatch.setenv("COMPOSER_MAX_PROMPT_CHARS", "10")
    with pytest.raises(
        ComposerError, match="is 12 characters long; the longest composer reads is 10"
    ):
        parse_prompt("slow chorale")


def test_ignored_values_and_conflicts_reach_plan_json():
    f = parse_prompt("a 24/7 diner in 3/0 at 900 bpm, 72 bpm or 80 bpm, 70s disco")
    back = PromptFacts.from_json(f.to_json())
    assert back == f and back.ignored and back.conflicts and back.era == "1970s"


# --- qualities stated in words, and the palette they choose ----------------------------------


def _plan(text: str):
    facts = parse_prompt(text)
    facts.duration = 20.0
    return facts, make_plan(None, facts)


@pytest.mark.parametrize(
    "text,attribute,value",
    [
        ("a frantic chase through the streets", "tempo", "fast"),
        ("a slow elegy", "tempo", "slow"),
        ("not too fast, please", "tempo", "moderate"),
        ("sparse and quiet", "density", "sparse"),
        ("a busy market", "density", "dense"),
        ("low strings", "register", "low"),
        ("high and light", "register", "high"),
        ("soft music for reading", "dynamics", "soft"),
        ("building to a climax", "dynamics", "building"),
        ("music that fades away", "dynamics", "fading"),
        ("a pizzicato passage", "articulation", "pizzicato"),
        ("tremolo strings in the storm", "articulation", "tremolo"),
        ("a hymn sung by a choir", "voices", "yes"),
        ("an Irish jig", "form", "jig"),
        ("a string quartet", "ensemble", "string quartet"),
        ("a brass band", "ensemble", "brass"),
    ],
)  # fmt: skip
def test_qualities_are_read_with_their_words(text, attribute, value):
    reading = parse_prompt(text).quality(attribute)
    assert reading is not None and reading.value == value
    assert reading.words.lower() in text.lower() and 0 < reading.confidence <= 1


def test_a_negated_quality_is_not_read():
    assert parse_prompt("without any choir").quality("voices") is None
    assert parse_prompt("not loud at all").quality("dynamics") is None


def test_words_no_pattern_places_are_listed_as_unread():
    facts = parse_prompt("a waltz for the zorblax festival")
    assert "zorblax" in facts.unread and "waltz" not in facts.unread


@pytest.mark.parametrize(
    "text",
    ["a frantic chase", "a pizzicato scherzo", "a heroic march", "calm ambient music",
     "a slow chorale in D minor", "a hymn", "something sacred and solemn", ""],
)  # fmt: skip
def test_no_choir_unless_voices_are_asked_for(text):
    _, plan = _plan(text)
    assert not any(52 <= p <= 54 for p in plan.instruments.value), plan.instruments


def test_voices_asked_for_get_a_choir():
    _, plan = _plan("a hymn sung by a choir")
    assert all(52 <= p <= 54 for p in plan.instruments.value)


@pytest.mark.parametrize(
    "text,meter,tempo_range",
    [("a lively jig", [6, 8], (160, 200)), ("a waltz", [3, 4], (130, 175)),
     ("a reel", [4, 4], (170, 215)), ("a gentle lullaby", [6, 8], (55, 80)),
     ("a stately march", [4, 4], (50, 130))],
)  # fmt: skip
def test_a_dance_sets_its_meter_and_speed(text, meter, tempo_range):
    _, plan = _plan(text)
    assert plan.meter.value == meter and plan.meter.source == "prompt"
    assert tempo_range[0] <= plan.tempo.value <= tempo_range[1], plan.tempo


def test_explicit_values_win_over_a_dance():
    _, plan = _plan("a jig in 4/4 at 90 bpm")
    assert plan.meter.value == [4, 4] and plan.tempo.value == 90


def test_articulations_become_general_midi_programs():
    assert set(_plan("a pizzicato scherzo")[1].instruments.value) == {45}
    assert 44 in _plan("tremolo strings for a storm")[1].instruments.value
    assert 59 in _plan("a muted trumpet and a tuba")[1].instruments.value


def test_stated_density_dynamics_and_register_reach_the_plan():
    _, sparse = _plan("sparse and slow")
    _, dense = _plan("busy and slow")
    assert max(b.intensity for b in sparse.bars) <= 1 <= min(b.intensity for b in dense.bars)
    assert _plan("soft music")[1].dynamics.value == "soft"
    assert _plan("deep and low")[1].register.value == "low"


@pytest.mark.parametrize(
    "text,family",
    [("a brass fanfare", range(56, 64)), ("a string quartet", range(40, 48)),
     ("solo piano, reflective", range(0, 8)), ("low strings", range(40, 52))],
)  # fmt: skip
def test_a_named_ensemble_plays(text, family):
    programs = _plan(text)[1].instruments.value
    assert all(p in family for p in programs), programs


def test_the_palette_follows_the_mood_without_a_style():
    """Nothing names a style: an upbeat request and a sad one get different palettes, and
    neither falls back to one default."""
    _, upbeat = _plan("joyful and upbeat")
    _, sad = _plan("sad and lonely")
    assert upbeat.style.source == sad.style.source == "prompt"
    assert upbeat.instruments.value != sad.instruments.value


def test_a_low_register_with_no_instruments_named_gets_instruments_that_reach_it():
    from composer.music.instruments import playable

    programs = _plan("deep, low music for the ocean floor")[1].instruments.value
    assert all(playable(p)[0] <= 40 for p in programs), programs
