"""The attributes a request states and a piece has: tempo class, mode, density, meter class and
register (the plan reads them), and the melody's motion, rhythm and feel (only the notes carry
them). The instruction reader reads them from words; training measures them from notes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ATTRIBUTES = ("tempo", "mode", "density", "meter", "register")  # what the plan reads
CHARACTER = ("motion", "rhythm", "feel")  # only in the notes: the prefix carries them
VALUES = {
    "tempo": ("slow", "moderate", "fast"),
    "mode": ("major", "minor"),
    "density": ("sparse", "medium", "dense"),
    "meter": ("duple", "triple", "compound"),
    "register": ("low", "middle", "high"),
    "motion": ("stepwise", "leaping"),
    "rhythm": ("even", "dotted"),
    "feel": ("calm", "vigorous"),
}


@dataclass(frozen=True)
class Attributes:
    """What an instruction can state; None: unsaid (or, measured, not classifiable)."""

    tempo: str | None = None
    mode: str | None = None
    density: str | None = None
    meter: str | None = None
    register: str | None = None
    motion: str | None = None
    rhythm: str | None = None
    feel: str | None = None

    def stated(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Thresholds:
    """Class boundaries measured on the training windows (tertiles): notes per quarter note
    for density, mean MIDI pitch for register, the melody's mean interval in semitones for
    motion and its share of long-short note pairs for rhythm. Saved with the instruct adapter."""

    density: tuple[float, float]
    register: tuple[float, float]
    motion: tuple[float, float]
    rhythm: tuple[float, float]
