"""What each General MIDI instrument can play: its range, and whether one part of it can sound
a chord.

The ranges are the usual written-at-pitch compasses of orchestration tables (a flute from C4, a
cello from C2, a tin whistle from C5); the synthesizer families, which have none, get a wide
middle range. Every program 0-127 has an entry, so any instrument a plan names has a range.
"""

from __future__ import annotations

from functools import lru_cache

# (lowest, highest) MIDI pitch, per General MIDI program (0-based).
_FAMILY = [  # per family of eight programs, the default
    (21, 108), (60, 96), (36, 96), (40, 84), (28, 55), (28, 96), (40, 81), (34, 84),
    (58, 91), (60, 96), (36, 96), (36, 96), (36, 96), (48, 84), (48, 84), (36, 84),
]  # fmt: skip
_PROGRAM = {
    6: (29, 89), 7: (36, 96),  # harpsichord, clavinet
    8: (60, 108), 9: (79, 108), 10: (60, 96), 11: (53, 89), 12: (45, 96), 13: (65, 108),
    14: (60, 77), 15: (48, 84),  # celesta .. dulcimer
    19: (24, 96), 21: (53, 89), 22: (60, 84), 23: (53, 89),  # church organ, accordions, harmonica
    31: (52, 88),  # guitar harmonics
    38: (28, 60), 39: (28, 60),  # synth basses
    40: (55, 100), 41: (48, 88), 42: (36, 76), 43: (28, 60),  # violin, viola, cello, contrabass
    44: (28, 96), 45: (28, 96), 46: (24, 103), 47: (40, 55),  # tremolo, pizzicato, harp, timpani
    48: (28, 96), 49: (28, 96), 50: (28, 96), 51: (28, 96),  # string ensembles
    52: (40, 81), 53: (40, 81), 54: (40, 81), 55: (48, 72),  # voices, orchestra hit
    56: (54, 82), 57: (40, 72), 58: (28, 58), 59: (54, 82),  # trumpet, trombone, tuba, muted
    60: (34, 77), 61: (36, 84), 62: (36, 84), 63: (36, 84),  # horn, brass sections
    64: (56, 88), 65: (49, 81), 66: (44, 76), 67: (36, 69),  # saxophones
    68: (58, 91), 69: (52, 81), 70: (34, 75), 71: (50, 91),  # oboe, cor anglais, bassoon, clarinet
    72: (74, 108), 73: (60, 96), 74: (60, 96), 75: (60, 96),  # piccolo, flute, recorder, pan
    76: (60, 84), 77: (55, 84), 78: (72, 96), 79: (60, 84),  # bottle, shakuhachi, whistle, ocarina
    104: (48, 84), 105: (48, 84), 106: (50, 79), 107: (55, 91),  # sitar, banjo, shamisen, koto
    108: (60, 84), 109: (67, 84), 110: (55, 100), 111: (60, 84),  # kalimba, bagpipe, fiddle, shanai
    112: (72, 96), 113: (60, 84), 114: (52, 76), 115: (60, 84),  # bells, agogo, steel drum, block
    116: (36, 60), 117: (36, 60), 118: (36, 60), 119: (36, 84),  # taiko, toms, synth drum, cymbal
}  # fmt: skip
# Programs whose one part may sound several notes at once: keyboards, mallets with two hands,
# organs and accordions, guitars and harps, bowed and sung sections, brass sections, pads.
_CHORDS = (
    set(range(0, 8)) | {8, 10, 11, 12, 15} | set(range(16, 22)) | {23} | set(range(24, 32))
    | set(range(44, 47)) | set(range(48, 54)) | set(range(61, 64)) | set(range(88, 96))
    | {104, 105, 107, 108}
)  # fmt: skip


def playable(program: int) -> tuple[int, int]:
    """(lowest, highest) MIDI pitch General MIDI ``program`` plays."""
    return _PROGRAM.get(program, _FAMILY[program // 8])


def comfortable(program: int) -> tuple[int, int]:
    """The range a part sits in without strain: the compass less its top fifth (and, for
    ranges wider than three octaves, its bottom third), where parts are placed."""
    lo, hi = playable(program)
    return (lo + (4 if hi - lo > 36 else 0), hi - 7)


def plays_chords(program: int) -> bool:
    return program in _CHORDS


@lru_cache(maxsize=128)
def name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(program)
