"""Arrange: the decoder's parts become an arranged score for the plan's instruments.

- the form: phrases the plan restates take the decoder's bars of the phrase they restate
  (composer.plan.form), so the music returns;
- the melody is moved by octaves, phrase by phrase, into its instrument's range (and a stated
  register);
- the harmony: the chord of each span is read from all the decoder's parts and the key
  (composer.arrange.harmony) and written as a track of chord symbols;
- the accompaniment: every other part is voiced from those chords in each section's texture
  and with the parts the section plays (composer.arrange.accompany), the bass lowest, all under
  the melody and inside their instruments' ranges; every part closes on one final chord held to
  the end (composer.arrange.ending);
- the tempo map, time and key signatures are written;
- percussion (channel 10), when the plan has it, comes from a small groove library keyed by
  intensity, and every hit point is voiced (crash cymbal on a downbeat, timpani on an accent);
- markers name the sections and the hit points ("cut 00:06.00").
"""

from __future__ import annotations

import symusic

from composer.arrange.accompany import accompany
from composer.arrange.ending import close
from composer.arrange.harmony import Chord, harmonize, spans
from composer.music.instruments import comfortable, name, playable
from composer.music.keys import key_signature
from composer.music.roles import CHORDS_TRACK, ROLES
from composer.music.words import pulse_ticks
from composer.types import Form, GenerationResult, Plan

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
    """A program for each role id (0 melody .. ``roles``-1 bass) from the plan's list; an
    instrument whose range lies a fifth or more below the last one's plays the bass in its
    place (a tin whistle never does), and one that cannot play under the melody takes it."""
    programs = list(plan.instruments.value)

    def middle(p: int) -> float:
        return sum(playable(p)) / 2

    if len(programs) > 2:
        low = min(range(1, len(programs)), key=lambda i: (middle(programs[i]), -i))
        if middle(programs[low]) <= middle(programs[-1]) - 7:
            programs[low], programs[-1] = programs[-1], programs[low]
        # An inner instrument that cannot go below the melody's middle (a flute under strings)
        # takes the melody: parts under the tune must fit under it.
        high = max(range(1, len(programs) - 1), key=lambda i: (playable(programs[i])[0], -i),
                   default=None)  # fmt: skip
        if high is not None and playable(programs[high])[0] >= middle(programs[0]) - 6:
            programs[high], programs[0] = programs[0], programs[high]
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
    tpq = score.ticks_per_quarter
    num, den = plan.meter.value
    unit_ticks = tpq * 4 // den  # ticks per beat of the meter
    bar_ticks = num * unit_ticks
    out = symusic.Score(tpq)
    out.time_signatures.append(symusic.TimeSignature(0, num, den))
    sharps, minor = key_signature(tuple(plan.key.value))
    out.key_signatures.append(symusic.KeySignature(0, sharps, minor))
    out.tempos.extend(tempo_events(plan, unit_ticks))
    programs = role_programs(plan, len(ROLES))
    # The music ends with the picture: at the last bar line, or, when an explicit tempo kept
    # whole bars from filling the duration, with the last chord held to the end.
    end = round(beat_at(plan, plan.duration.value) * unit_ticks)
    tracks = sorted((t for t in score.tracks if len(t.notes)), key=lambda t: t.program)
    roles = [t.program for t in tracks]  # melody first, bass last
    form = plan.form or Form([], [])
    lines = _restate([list(t.notes) for t in tracks], form, bar_ticks)
    parts = [programs[r] for r in roles]
    melody = _place_melody(lines[0], parts[0], plan.register.value, form, bar_ticks) \
        if lines else []  # fmt: skip
    chorale = sum(s.texture == "chorale" for s in form.sections) * 2 > len(form.sections) > 0
    starts = spans(num, den, tpq, end, chorale)
    phrase_ends = [(p.start + p.bars) * bar_ticks for p in form.phrases]
    chords = harmonize([melody, *lines[1:]], tuple(plan.key.value), starts, end, phrase_ends)
    voices = [_land(melody, chords[-1])] if melody else []
    if len(lines) > 1:
        sections = _sections(form, roles, bar_ticks, end)
        voices += accompany(melody, chords, parts[1:], sections, num=num, den=den, tpq=tpq)
    for role, program, notes in zip(roles, parts, close(voices, end, pulse_ticks(num, den, tpq)),
                                    strict=True):  # fmt: skip
        t = symusic.Track(f"{ROLES[role]} ({name(program)})", program, False)
        t.notes.extend(_inside(notes, program))
        out.tracks.append(t)
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
    out.tracks.append(chord_track(chords))
    out.markers.extend(markers(plan, bar_ticks, unit_ticks))
    return out


def tempo_events(plan: Plan, unit_ticks: int) -> list[symusic.Tempo]:
    """The plan's tempo map as the score's tempo events (its beats in the meter's unit)."""
    return [symusic.Tempo(round(s.beat * unit_ticks), float(s.bpm)) for s in plan.tempo_map]


def markers(plan: Plan, bar_ticks: int, unit_ticks: int) -> list[symusic.TextMeta]:
    """Markers at the sections and hit points, named by their time in the video."""
    out = [symusic.TextMeta(i * bar_ticks, f"section {_clock(bar.start)}")
           for i, bar in enumerate(plan.bars) if bar.section and i > 0]  # fmt: skip
    for h in plan.hit_points:
        t = h.bar * bar_ticks + h.beat * unit_ticks
        out.append(symusic.TextMeta(t, f"{h.kind} {_clock(h.time)}"))
    return sorted(out, key=lambda m: m.time)


def chord_track(chords: list[Chord]) -> symusic.Track:
    """The chord symbols as lyric events of a track without notes, one where the chord
    changes: what a DAW shows above the part, and what the notation reads back."""
    track = symusic.Track(CHORDS_TRACK, 0, False)
    last = None
    for c in chords:
        if c.symbol() != last:
            track.lyrics.append(symusic.TextMeta(c.start, c.symbol()))
            last = c.symbol()
    return track


def _restate(lines: list[list[symusic.Note]], form: Form, bar: int) -> list[list[symusic.Note]]:
    """Every part's bars of each restated phrase replaced by those of the phrase it restates."""
    # (bar written, bar it restates, the bar line where the restated run ends)
    moves = [(p.start + k, p.source + k, p.source + p.exact) for p in form.phrases
             if p.source is not None for k in range(p.exact)]  # fmt: skip
    if not moves:
        return lines
    out = []
    for notes in lines:
        by_bar: dict[int, list[symusic.Note]] = {}
        for n in notes:
            by_bar.setdefault(n.time // bar, []).append(n)
        copied = {d for d, _, _ in moves}
        # A note of the decoder's held into a restated bar stops at its bar line.
        kept = [symusic.Note(n.time, _clip(n, bar, copied), n.pitch, n.velocity)
                for b, v in by_bar.items() if b not in copied for n in v]  # fmt: skip
        restated = [symusic.Note(n.time + (dest - src) * bar, min(n.duration, stop * bar - n.time),
                                 n.pitch, n.velocity)
                    for dest, src, stop in moves for n in by_bar.get(src, [])]  # fmt: skip
        out.append(sorted(kept + restated, key=lambda n: n.time))
    return out


def _clip(n: symusic.Note, bar: int, copied: set[int]) -> int:
    first = n.time // bar + 1
    last = (n.time + n.duration - 1) // bar
    for b in range(first, last + 1):
        if b in copied:
            return b * bar - n.time
    return n.duration


def _place_melody(notes, program: int, register: str, form: Form, bar: int) -> list:
    """The melody moved by octaves into its instrument's comfortable range (towards a stated
    register): one shift for the piece, another for a phrase only where the piece's would
    leave it outside the instrument's range."""
    if not notes:
        return notes
    lo, hi = comfortable(program)
    shift = _shift([n.pitch for n in notes], lo, hi, register)
    low, high = playable(program)
    bounds = [(p.start * bar, (p.start + p.bars) * bar) for p in form.phrases] or [(0, 1 << 40)]
    out = []
    for a, b in bounds:
        inside = [n for n in notes if a <= n.time < b]
        here = shift
        if inside and not all(low <= n.pitch + shift <= high for n in inside):
            here = _shift([n.pitch for n in inside], lo, hi, register)
        out += [symusic.Note(n.time, n.duration, n.pitch + here, n.velocity) for n in inside]
    return out


def _shift(pitches: list[int], lo: int, hi: int, register: str) -> int:
    """Whole octaves that put the pitches' middle in [lo, hi] (and at or beyond a stated
    register's middle where the range allows)."""
    pitches = sorted(pitches)
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
    return shift


def _land(melody: list, final: Chord) -> list:
    """The melody's last note on a tone of the final chord (the nearest, a step down first):
    the piece ends on the tonic chord, and the tune with it."""
    last = max(n.time for n in melody)
    tones = final.tones()
    out = []
    for n in melody:
        p = n.pitch
        if n.time == last and p % 12 not in tones:
            p = min((p + d for d in range(-4, 5) if (p + d) % 12 in tones),
                    key=lambda q: (abs(q - p), q > p))  # fmt: skip
        out.append(symusic.Note(n.time, n.duration, p, n.velocity))
    return out


def _inside(notes: list, program: int) -> list:
    """Every note inside the instrument's range: a stray folds in by octaves."""
    lo, hi = playable(program)
    out = []
    for n in notes:
        p = n.pitch
        while p > hi:
            p -= 12
        while p < lo:
            p += 12
        out.append(symusic.Note(n.time, n.duration, p, n.velocity))
    return out


def _sections(form: Form, roles: list[int], bar: int, end: int):
    """(start tick, end tick, texture, which accompanying parts play) per section."""
    if not form.sections:
        return [(0, end, "held", [True] * (len(roles) - 1))]
    out = []
    for k, s in enumerate(form.sections):
        lo = s.start * bar
        hi = end if k == len(form.sections) - 1 else (s.start + s.bars) * bar
        out.append((lo, max(hi, lo + 1), s.texture, [r not in s.resting for r in roles[1:]]))
    return out


def beat_at(plan: Plan, seconds: float) -> float:
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


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:05.2f}"
