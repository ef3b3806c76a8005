"""Arrange: the decoder's role tracks become an editable score for the plan's instruments.

- each role gets the plan's General MIDI program, moved by octaves into the instrument's range
  (and towards a stated register);
- a dance's accompaniment is re-timed into its texture (composer.arrange.textures), and every
  part closes on one final chord held to the end (composer.arrange.ending);
- the tempo map, time and key signatures are written;
- percussion (channel 10), when the plan has it, comes from a small groove library keyed by
  intensity, and every hit point is voiced (crash cymbal on a downbeat, timpani on an accent);
- markers name the sections and the hit points ("cut 00:06.00").
"""

from __future__ import annotations

import symusic

from composer.arrange.ending import close
from composer.arrange.textures import apply_texture
from composer.music.keys import key_signature
from composer.music.roles import ROLES
from composer.music.words import pulse_ticks
from composer.types import GenerationResult, Plan

# Playable ranges (MIDI pitches) of the programs composer's plans use; others get a wide range.
RANGES = {
    0: (21, 108), 6: (29, 89), 19: (24, 96), 24: (40, 84), 32: (28, 55), 33: (28, 60),
    40: (55, 100), 41: (48, 88), 42: (36, 76), 43: (28, 60), 46: (24, 103), 47: (40, 55),
    48: (28, 96), 52: (40, 81), 56: (54, 82), 57: (40, 72), 58: (28, 58), 60: (34, 77),
    68: (58, 91), 70: (34, 75), 71: (50, 91), 73: (60, 96), 74: (60, 96),
}  # fmt: skip
_WIDE = (28, 100)
# The part's middle pitch a stated register asks for (C4 and below; D5 and above).
REGISTER_MIDDLE = {"low": 60, "high": 74}
CRASH, KICK, SNARE, CLOSED_HAT, RIDE, TAMBOURINE = 49, 36, 38, 42, 51, 54
TIMPANI = 47  # a GM program (melodic), for accents
HITS_TRACK = "hits"  # the timpani track's name: percussion to perform and measure, though pitched
# Grooves per intensity level: (position in beats of the bar's unit, drum, velocity); the
# pattern repeats every bar and is cut to the meter's length.
GROOVES = {
    0: [],
    1: [(0, KICK, 60), (0, RIDE, 45)],
    2: [(0, KICK, 75), (2, SNARE, 60), (0, CLOSED_HAT, 50), (1, CLOSED_HAT, 45),
        (2, CLOSED_HAT, 50), (3, CLOSED_HAT, 45), (4, KICK, 70), (5, CLOSED_HAT, 45)],
    3: [(0, KICK, 95), (1, CLOSED_HAT, 60), (2, SNARE, 85), (2, KICK, 70), (3, CLOSED_HAT, 60),
        (0, CLOSED_HAT, 70), (4, KICK, 90), (5, CLOSED_HAT, 60), (6, SNARE, 85),
        (0.5, TAMBOURINE, 50), (2.5, TAMBOURINE, 50)],
}  # fmt: skip


def role_programs(plan: Plan, roles: int) -> list[int]:
    """A program for each role id (0 melody .. ``roles``-1 bass) from the plan's list."""
    programs = list(plan.instruments.value)
    out = []
    for r in range(roles):
        if r == 0:
            out.append(programs[0])
        elif r == roles - 1:
            out.append(programs[-1])
        else:
            out.append(programs[min(r, len(programs) - 2)] if len(programs) > 1 else programs[0])
    return out


def arrange(music: GenerationResult | symusic.Score, plan: Plan) -> symusic.Score:
    """Stage 6: the decoder's music (a GenerationResult, or its score: one track per role,
    ticks from time 0) as the plan's arrangement."""
    score = music.score() if isinstance(music, GenerationResult) else music
    roles = ROLES
    tpq = score.ticks_per_quarter
    num, den = plan.meter.value
    unit_ticks = tpq * 4 // den  # ticks per beat of the meter
    out = symusic.Score(tpq)
    out.time_signatures.append(symusic.TimeSignature(0, num, den))
    sharps, minor = key_signature(tuple(plan.key.value))
    out.key_signatures.append(symusic.KeySignature(0, sharps, minor))
    for seg in plan.tempo_map:
        out.tempos.append(symusic.Tempo(round(seg.beat * unit_ticks), float(seg.bpm)))
    programs = role_programs(plan, len(roles))
    bar_ticks = num * unit_ticks
    # The music ends with the picture: at the last bar line, or, when an explicit tempo kept
    # whole bars from filling the duration, with the last chord held to the end.
    end = round(_beat_at(plan, plan.duration.value) * unit_ticks)
    voices = []
    for track in sorted(score.tracks, key=lambda t: t.program):  # melody first, bass last
        role = track.program
        program = programs[role] if 0 <= role < len(programs) else programs[0]
        t = symusic.Track(f"{roles[role]} ({_gm_name(program)})", program, False)
        lo, hi = RANGES.get(program, _WIDE)
        # A stated register moves every part (low) or every part above the bass (high).
        register = (
            plan.register.value
            if role != len(roles) - 1 or plan.register.value == "low"
            else "middle"
        )
        voices.append(_fit_range(list(track.notes), lo, hi, register))
        out.tracks.append(t)
    # A dance's accompaniment in its pattern; then all voices close together on one final
    # chord, held at least a beat to the end.
    voices = apply_texture(voices, plan.texture.value, num, den, tpq, end)
    for t, notes in zip(out.tracks, close(voices, end, pulse_ticks(num, den, tpq)), strict=True):
        t.notes.extend(notes)
    if plan.drums.value:
        drums = _percussion(plan, bar_ticks, unit_ticks, num)
        drums.notes = [n for n in drums.notes if n.time < end]
        out.tracks.append(drums)
    accents = [h for h in plan.hit_points if not h.downbeat]
    if plan.drums.value and accents:
        timp = symusic.Track(f"{HITS_TRACK} (Timpani)", TIMPANI, False)
        tonic = 36 + (plan.key.value[0] + 7) % 12 + 5  # a low tonic for the timpani (41..52)
        for h in accents:
            t = h.bar * bar_ticks + h.beat * unit_ticks
            timp.notes.append(symusic.Note(t, unit_ticks, tonic, 100))
        out.tracks.append(timp)
    for i, bar in enumerate(plan.bars):
        if bar.section and i > 0:
            out.markers.append(symusic.TextMeta(i * bar_ticks, f"section {_clock(bar.start)}"))
    for h in plan.hit_points:
        t = h.bar * bar_ticks + h.beat * unit_ticks
        out.markers.append(symusic.TextMeta(t, f"{h.kind} {_clock(h.time)}"))
    out.markers.sort(key=lambda m: m.time)
    return out


def _beat_at(plan: Plan, seconds: float) -> float:
    """The beat (in the meter's unit) at ``seconds``, from the plan's tempo map."""
    unit = plan.meter.value[1] / 4
    seg = plan.tempo_map[0]
    for s in plan.tempo_map:
        if s.start <= seconds:
            seg = s
    return seg.beat + (seconds - seg.start) * seg.bpm * unit / 60.0


def _percussion(plan: Plan, bar_ticks: int, unit_ticks: int, num: int) -> symusic.Track:
    drums = symusic.Track("percussion", 0, True)
    for bar in plan.bars:
        start = bar.index * bar_ticks
        for pos, drum, vel in GROOVES[bar.intensity]:
            if pos < num:
                drums.notes.append(
                    symusic.Note(start + round(pos * unit_ticks), unit_ticks // 2, drum, vel)
                )
    for h in plan.hit_points:
        if h.downbeat:
            t = h.bar * bar_ticks
            drums.notes.append(symusic.Note(t, unit_ticks * 2, CRASH, 110))
    drums.notes.sort(key=lambda n: (n.time, n.pitch))
    return drums


def _fit_range(notes: list, lo: int, hi: int, register: str = "middle") -> list:
    """Move the part by whole octaves so its middle sits in range (and, for a stated
    register, at or below ``REGISTER_MIDDLE["low"]`` or at or above the high one where the
    instrument reaches), then fold strays in."""
    if not notes:
        return notes
    pitches = sorted(n.pitch for n in notes)
    middle = pitches[len(pitches) // 2]
    shift = 0
    while middle + shift > hi - 6 and middle + shift - 12 >= lo:
        shift -= 12
    while middle + shift < lo + 6 and middle + shift + 12 <= hi:
        shift += 12
    if register == "low":
        while middle + shift > REGISTER_MIDDLE["low"] and middle + shift - 12 >= lo + 3:
            shift -= 12
    elif register == "high":
        while middle + shift < REGISTER_MIDDLE["high"] and middle + shift + 12 <= hi - 3:
            shift += 12
    out = []
    for n in notes:
        p = n.pitch + shift
        while p > hi:
            p -= 12
        while p < lo:
            p += 12
        out.append(symusic.Note(n.time, n.duration, p, n.velocity))
    return out


def _gm_name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(program)


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:05.2f}"
