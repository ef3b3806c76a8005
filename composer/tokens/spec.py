"""The tokenizer's configuration: a frozen dataclass that saves with every tokenizer file."""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.music.keys import MAJOR_KEYS, MINOR_KEYS
from composer.music.roles import ROLES

STYLES = ("chorale", "renaissance", "medieval", "quartet", "folk", "fiddle", "piano", "other")


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything that fixes the vocabulary; two tokenizers with equal specs are identical."""

    name: str = "remi-roles-v1"
    styles: tuple[str, ...] = STYLES
    roles: tuple[str, ...] = ROLES
    pitch_range: tuple[int, int] = (21, 109)
    # miditok beat_res: 12 steps per beat for the first 4 beats of a duration (1/16 notes and
    # triplets), 4 per beat after that.
    beat_res: tuple[tuple[int, int, int], ...] = ((0, 4, 12), (4, 12, 4))
    num_velocities: int = 4
    # Meters, as miditok's time_signature_range: denominator -> numerators.
    meters: tuple[tuple[int, tuple[int, ...]], ...] = (
        (8, (1, 2, 3, 4, 5, 6, 7, 9, 12)),
        (4, (1, 2, 3, 4, 5, 6, 7)),
        (2, (1, 2, 3, 4)),
    )
    # Bar intensity levels: thresholds on onsets per quarter note per sounding voice, scaled by
    # the mean velocity over that of an unmarked note. Below the first: 0; above the last: 3.
    intensity_thresholds: tuple[float, ...] = (0.6, 1.1, 1.9)
    max_hit_beats: int = 12  # Hit_0 .. Hit_11: a hit accent on that beat of the bar
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def intensity_levels(self) -> int:
        return len(self.intensity_thresholds) + 1

    def control_tokens(self) -> list[str]:
        """The tokens composer adds to miditok's vocabulary (as special tokens, fixed ids)."""
        return [
            "PAD_None", "BOS_None", "EOS_None",
            *(f"Style_{s}" for s in self.styles),
            *(f"Key_{k}" for k in MAJOR_KEYS + MINOR_KEYS),
            *(f"Intensity_{i}" for i in range(self.intensity_levels)),
            *(f"Hit_{b}" for b in range(self.max_hit_beats)),
            "Section_start",
        ]  # fmt: skip
