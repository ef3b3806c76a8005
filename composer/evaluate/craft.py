"""What a player would check in a composed score.mid: dynamics, accents on the cuts, the ending.

- velocity spread: the standard deviation of pitched notes' velocities (MIDI units);
- accents: for each strong cut placed in the score without drums, the largest velocity of a
  note attacking within 50 ms of it, above the mean velocity of its bar;
- endings: no pitched attack in the final half-beat; the final chord sounds at least one beat
  in every pitched part; the last bar line (or, where an explicit tempo left the bars short,
  the final chord's end) within 50 ms of the video's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic

from composer.arrange.arranger import HITS_TRACK
from composer.music.words import pulse_ticks
from composer.types import Plan

ACCENT_WINDOW = 0.05  # seconds either side of a cut
END_TOLERANCE = 0.05  # seconds between the music's end and the video's


@dataclass
class Craft:
    velocity_sd: float
    accents: list[float]  # per strong cut without drums: the accent above its bar's mean
    attack_in_last_half_beat: bool
    shortest_final_chord: float  # beats, the shortest over pitched parts (0: a part is silent)
    end_error: float  # seconds between the music's end and the planned end

    def ending_ok(self) -> bool:
        return (
            not self.attack_in_last_half_beat
            and self.shortest_final_chord >= 1.0 - 1e-6
            and self.end_error <= END_TOLERANCE
        )


def pitched(score: symusic.Score) -> list[symusic.Track]:
    """The pitched parts with notes (drums and the timpani that marks hits left out)."""
    return [t for t in score.tracks if not t.is_drum and len(t.notes)
            and not t.name.startswith(HITS_TRACK)]  # fmt: skip


def measure_craft(midi: str | Path, plan: Plan) -> Craft:
    ticks = symusic.Score(str(midi))
    seconds = ticks.to("second")
    parts_s = pitched(seconds)
    velocities = np.array([n.velocity for t in parts_s for n in t.notes], float)
    sd = float(velocities.std()) if len(velocities) else 0.0

    accents = []
    if not plan.drums.value:
        bar_starts = [b.start for b in plan.bars] + [plan.duration.value]
        for hit in plan.hit_points:
            lo, hi = bar_starts[hit.bar], bar_starts[hit.bar + 1]
            bar = [n.velocity for t in parts_s for n in t.notes if lo - 1e-3 <= n.time < hi]
            near = [n.velocity for t in parts_s for n in t.notes
                    if abs(n.time - hit.score_time) <= ACCENT_WINDOW]  # fmt: skip
            accents.append(float(max(near) - np.mean(bar)) if near and bar else 0.0)

    end = max(n.end for t in parts_s for n in t.notes)
    beat = _beat_seconds(ticks, plan)
    last_onset = max(n.time for t in parts_s for n in t.notes)
    shortest = min(_final_chord(t, end) for t in parts_s) / beat
    return Craft(
        velocity_sd=round(sd, 2),
        accents=[round(a, 1) for a in accents],
        attack_in_last_half_beat=last_onset > end - beat / 2 + 1e-3,
        shortest_final_chord=round(shortest, 3),
        end_error=round(abs(end - plan.duration.value), 4),
    )


def _final_chord(track: symusic.Track, end: float) -> float:
    """Seconds the part's last sounding notes last, where they sound to ``end``; else 0."""
    last = max(n.time for n in track.notes)
    final = [n for n in track.notes if n.time == last]
    return end - last if all(abs(n.end - end) < 1e-3 for n in final) else 0.0


def _beat_seconds(score: symusic.Score, plan: Plan) -> float:
    """The length of a felt beat (a dotted quarter in compound meters) at the end."""
    quarters = pulse_ticks(*plan.meter.value, score.ticks_per_quarter) / score.ticks_per_quarter
    bpm = score.tempos[-1].qpm if len(score.tempos) else plan.tempo.value
    return quarters * 60.0 / bpm
