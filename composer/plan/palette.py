"""The palette: which decoder style, ensemble, percussion and accompaniment a plan uses.

What the request names comes first: a dance or form (a jig is a fiddle tune in 6/8 for a
fiddle band), a style the sentence model matched, an ensemble or instruments, an articulation
("pizzicato": Pizzicato Strings). What it leaves open is chosen from the mood (the request's, or
the video's valence and arousal) among instrumental palettes a video maker expects. A choir
sings only when the request asks for voices.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.music.qualities import ensembles, forms
from composer.plan.request import PromptFacts
from composer.types import Choice

# Each style's usual meter and ensemble (ensembles.tsv), for a style named with no ensemble.
STYLE_DEFAULTS = {
    "chorale": ((4, 4), "strings"),
    "renaissance": ((4, 4), "winds"),  # 4/4, not 4/2: hits need quarters
    "medieval": ((3, 4), "recorder, harp and cello"),
    "quartet": ((4, 4), "string quartet"),
    "folk": ((4, 4), "flute, guitar and bass"),
    "fiddle": ((6, 8), "fiddle band"),
    "piano": ((3, 4), "piano"),
    "other": ((4, 4), "strings"),
}
# Palettes by mood quadrant when nothing names one: (min arousal, min valence, ensemble).
# The first row whose bounds the mood reaches is used.
MOOD_PALETTES = (
    (0.65, 0.8, "brass"),  # triumphant
    (0.65, 0.5, "band"),  # upbeat, joyful
    (0.65, 0.0, "orchestra"),  # tense, action
    (0.35, 0.6, "flute, guitar and bass"),  # hopeful, playful
    (0.35, 0.0, "strings"),  # wistful, mysterious, dark
    (0.0, 0.5, "piano"),  # calm, tender
    (0.0, 0.0, "strings"),  # sad, solemn
)
CHOIR = range(52, 55)  # Choir Aahs, Voice Oohs, Synth Voice
BOWED = {40, 41, 42, 43, 44, 48, 49}  # strings that can play pizzicato or tremolo
ARTICULATION_PROGRAM = {"pizzicato": 45, "tremolo": 44}
TRUMPET, MUTED_TRUMPET, STRINGS = 56, 59, 48
LOW = "low strings"  # the ensemble for a low register when the request names none


@dataclass(frozen=True)
class Palette:
    style: Choice
    instruments: Choice  # General MIDI programs, melody first, bass last
    ensemble_drums: bool | None  # what the ensemble implies (a band has drums)
    texture: Choice


def choose_palette(facts: PromptFacts, mood_source: str, valence: float, arousal: float) -> Palette:
    """The style, ensemble and texture for ``facts``, the rest from the mood (``mood_source``:
    where valence and arousal came from: "prompt", "video" or "default")."""
    form = forms()[r.value] if (r := facts.quality("form")) else None
    named = ensembles()[r.value] if (r := facts.quality("ensemble")) else None
    mood_pick = next(e for a, v, e in MOOD_PALETTES if arousal >= a and valence >= v)
    mood_why = f"valence {valence:.2f} and arousal {arousal:.2f} ({mood_source}) suit {mood_pick}"

    by_mood = False  # whether the mood chose the style (then it chooses the ensemble too)
    if form is not None:
        style = Choice(form.style, "prompt", f"a {form.name} is written as {form.style}",
                       facts.quality("form").confidence)  # fmt: skip
    elif named is not None:
        style = Choice(named.style, "prompt", f"{named.name} suits {named.style}")
    elif facts.style is not None:
        match = facts.style
        style = Choice(match.name, "prompt", f"the request reads as {match.name} "
                       f"(similarity {match.confidence})", match.confidence)  # fmt: skip
    else:
        style, by_mood = Choice(ensembles()[mood_pick].style, mood_source, mood_why), True

    if facts.instruments:
        parts = len(ensembles()[STYLE_DEFAULTS[style.value][1]].programs)
        programs, source, why = _parts_from(facts.instruments, parts), "prompt", "asked for these"
    elif named is not None:
        programs, source, why = list(named.programs), "prompt", f"asked for {named.name}"
    elif (r := facts.quality("voices")) and r.value == "yes":
        programs, source, why = list(ensembles()["choir"].programs), "prompt", f"{r.words!r}"
    elif form is not None:
        programs, source = list(ensembles()[form.ensemble].programs), "prompt"
        why = f"a {form.name} is usually for {form.ensemble}"
    elif (r := facts.quality("register")) and r.value == "low":
        # A flute or a fiddle cannot play low: instruments that can, when none is named.
        programs, source, why = list(ensembles()[LOW].programs), "prompt", f"{r.words!r}: {LOW}"
    elif not by_mood:
        name = STYLE_DEFAULTS[style.value][1]
        programs, source = list(ensembles()[name].programs), "default"
        why = f"{style.value} is usually for {name}"
    else:
        programs, source, why = list(ensembles()[mood_pick].programs), mood_source, mood_why
    programs, why = _articulated(programs, facts, why)
    instruments = Choice(programs, source, why)

    drums = named.drums if named is not None else None
    if named is None and not facts.instruments and by_mood:
        drums = ensembles()[mood_pick].drums
    if form is not None:
        texture = Choice(form.texture, "prompt", f"a {form.name}'s accompaniment")
    else:
        texture = Choice("free", "default", "the decoder's parts as written")
    return Palette(style, instruments, drums, texture)


def _parts_from(programs: list[int], parts: int) -> list[int]:
    """One program per part: a single instrument (or family) plays every part; several named
    instruments take a part each, the first the melody, the last the bass."""
    if len(programs) == 1:
        return programs * max(parts, 2)
    return programs[:6]


def _articulated(programs: list[int], facts: PromptFacts, why: str) -> tuple[list[int], str]:
    """Articulations General MIDI can play; a choir only for voices."""
    said = facts.quality("articulation")
    if said is not None and said.value in ARTICULATION_PROGRAM:
        program = ARTICULATION_PROGRAM[said.value]
        if any(p in BOWED for p in programs):
            programs = [program if p in BOWED else p for p in programs]
        else:  # the request's ensemble has no strings: strings play it
            programs = [program] * 4
        why += f"; {said.words!r}: General MIDI {program}"
    elif said is not None and said.value == "muted" and TRUMPET in programs:
        programs = [MUTED_TRUMPET if p == TRUMPET else p for p in programs]
        why += f"; {said.words!r}: Muted Trumpet"
    voices = facts.quality("voices")
    if not (voices and voices.value == "yes") and any(p in CHOIR for p in programs):
        programs = [STRINGS if p in CHOIR else p for p in programs]
        why += "; strings in place of voices, which the request does not ask for"
    return programs, why
