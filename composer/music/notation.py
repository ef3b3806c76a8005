"""MusicXML a musician can read, built directly from a ``symusic.Score``.

music21's MIDI import guesses the notation (tuplets wherever timing wobbles, a meter and key
only in the first part, bars that differ between parts); here the notation follows from the
score's own maps instead:

- Bars are laid from the time-signature map over the score's length (the last note end over all
  tracks, drums included, rounded up to a whole bar), so every part has the MIDI's bar count. A
  meter change that falls inside a bar cuts that bar short, with a meter of its own.
- Rhythm is quantised to a 16th-note grid: no tuplets. Each bar is filled exactly, notes that
  cross a beat or bar line are split into plain or dotted values and tied; in compound meters a
  note longer than a beat is split at the dotted-quarter beats.
- One voice per part: notes starting together are a chord (as long as its longest note), and a
  chord still sounding at the next onset is cut there. Performed MIDI overlaps (legato, pedal)
  would otherwise become a tangle of extra voices.
- Pitches are written at concert pitch, spelled from the key (flats in flat keys, the minor
  mode's raised seventh).
- The chord symbols of the score's chord track (composer.music.roles.CHORDS_TRACK) stand above
  the first part.
"""

from __future__ import annotations

import bisect
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import symusic
from music21 import chord as m21chord
from music21 import clef, harmony, instrument, key, meter, note, pitch, stream, tempo, tie
from music21 import duration as m21duration
from music21.musicxml.m21ToXml import ScoreExporter

from composer.music.roles import CHORDS_TRACK
from composer.outputs import atomic_path

UNITS = 4  # grid steps per quarter note: 16ths
# Note values in grid steps that need no tie: plain and single-dotted, 16th to breve.
_VALUES = (32, 24, 16, 12, 8, 6, 4, 3, 2, 1)
_BASS_PROGRAMS = frozenset([*range(32, 40), 42, 43, 57, 58, 70])
_VIOLA = 41
_GUITARS = range(24, 32)
_KINDS = {"": "major", "m": "minor", "dim": "diminished", "7": "dominant-seventh"}

Meter = tuple[int, int]


@dataclass(frozen=True)
class _Bar:
    start: int  # grid steps
    length: int
    meter: Meter

    @property
    def compound(self) -> bool:
        return self.meter[0] % 3 == 0 and self.meter[0] > 3

    @property
    def beat(self) -> int:
        """The beat in grid steps: a dotted value in compound meters, else the denominator."""
        step = max(1, 4 * UNITS // self.meter[1])
        return 3 * step if self.compound else step


@dataclass(frozen=True)
class _Event:
    start: int  # grid steps
    end: int
    pitches: tuple[int, ...]  # empty: a rest


def _grid(ticks: int, tpq: int) -> int:
    """``ticks`` in grid steps, rounded to the nearest (halves up)."""
    return (2 * ticks * UNITS + tpq) // (2 * tpq)


def _bar_steps(m: Meter) -> int | None:
    """Grid steps in a bar of ``m``; None where that is not a whole number of 16ths."""
    steps, rest = divmod(m[0] * 4 * UNITS, m[1])
    return steps if rest == 0 and steps > 0 else None


def _meter_of(steps: int, denominator: int) -> Meter:
    """The meter of a bar ``steps`` long, in ``denominator`` where it divides, else in 16ths."""
    num, rest = divmod(steps * denominator, 4 * UNITS)
    return (num, denominator) if rest == 0 else (steps, 4 * UNITS)


def _events(track: symusic.Track, tpq: int) -> list[_Event]:
    """The track's notes on the grid, one voice: chords by onset, each cut at the next onset."""
    chords: dict[int, tuple[int, set[int]]] = {}
    for n in track.notes:
        start = _grid(n.time, tpq)
        end = max(_grid(n.time + n.duration, tpq), start + 1)  # never shorter than a step
        last, pitches = chords.get(start, (end, set()))
        chords[start] = (max(last, end), pitches | {n.pitch})
    starts = sorted(chords)
    ends = [min(chords[s][0], nxt) for s, nxt in zip(starts[:-1], starts[1:], strict=True)]
    ends += [chords[s][0] for s in starts[-1:]]
    return [_Event(s, e, tuple(sorted(chords[s][1]))) for s, e in zip(starts, ends, strict=True)]


def _score_end(score: symusic.Score) -> int:
    tpq = score.ticks_per_quarter
    return max(
        (max(_grid(n.time + n.duration, tpq), _grid(n.time, tpq) + 1)
         for t in score.tracks for n in t.notes),
        default=0,
    )  # fmt: skip


def _bars(score: symusic.Score, end: int) -> list[_Bar]:
    """Bars from the time-signature map until ``end`` (grid steps); at least one."""
    tpq = score.ticks_per_quarter
    changes: dict[int, tuple[Meter, int]] = {}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        m = (ts.numerator, ts.denominator)
        if steps := _bar_steps(m):  # others cannot be laid on the grid
            changes[_grid(ts.time, tpq)] = (m, steps)
    times = sorted(changes)
    bars: list[_Bar] = []
    current, pos, i = ((4, 4), 16), 0, 0
    while pos < end or not bars:
        while i < len(times) and times[i] <= pos:
            current, i = changes[times[i]], i + 1
        m, length = current
        if i < len(times) and times[i] < pos + length:  # the meter changes inside this bar
            length = times[i] - pos
            m = _meter_of(length, m[1])
        bars.append(_Bar(pos, length, m))
        pos += length
    return bars


def _bar_at(bars: list[_Bar], steps: int) -> int:
    """The bar that holds grid step ``steps`` (the first or last bar outside them)."""
    return max(0, bisect.bisect_right([b.start for b in bars], steps) - 1)


def _nearest_bar(bars: list[_Bar], steps: int) -> int:
    """The bar whose start is nearest ``steps`` (the later one on a tie)."""
    i = _bar_at(bars, steps)
    later = i + 1 < len(bars) and bars[i + 1].start - steps <= steps - bars[i].start
    return i + 1 if later else i


def _keys(score: symusic.Score, bars: list[_Bar]) -> list[key.Key]:
    """The key of every bar; a key change moves to the nearest bar line. C major by default."""
    tpq = score.ticks_per_quarter
    at: dict[int, key.Key] = {}
    for ks in sorted(score.key_signatures, key=lambda ks: ks.time):
        if -7 <= ks.key <= 7:
            mode = "minor" if ks.tonality else "major"
            at[_nearest_bar(bars, _grid(ks.time, tpq))] = key.KeySignature(ks.key).asKey(mode)
    keys: list[key.Key] = []
    current = key.Key("C")
    for i in range(len(bars)):
        current = at.get(i, current)
        keys.append(current)
    return keys


def _spelling(k: key.Key) -> dict[int, str]:
    """Pitch-class names in key ``k``: its scale, the minor's raised 7th, then black keys as
    sharps in sharp keys and flats in flat keys (C major: C#, Eb, F#, G#, Bb)."""
    names = {p.pitchClass: p.name for p in k.pitches}
    if k.mode == "minor":
        leading = k.tonic.transpose("-m2")
        names.setdefault(leading.pitchClass, leading.name)
    black = {1: ("C#", "D-"), 3: ("D#", "E-"), 6: ("F#", "G-"), 8: ("G#", "A-"), 10: ("A#", "B-")}
    for pc in range(12):
        if pc in black:
            sharp, flat = black[pc]
            chosen = flat if k.sharps < 0 or (k.sharps == 0 and pc in (3, 10)) else sharp
        else:
            chosen = pitch.Pitch(pc).name
        names.setdefault(pc, chosen)
    return names


def _pitch(midi: int, names: dict[int, str]) -> pitch.Pitch:
    p = pitch.Pitch(names[midi % 12], octave=4)
    p.octave += (midi - round(p.ps)) // 12
    return p


def _pieces(start: int, end: int, bar: _Bar, rest: bool = False) -> list[int]:
    """Lengths of the tied values that write ``start``..``end`` (grid steps into ``bar``).
    A rest starts on a multiple of its own value and is dotted only in compound meters (a
    quarter and a half rest after beat 1 of 4/4, not a dotted half)."""
    beat = bar.beat
    out: list[int] = []
    while start < end:
        if start % beat:  # off the beat: up to the next beat, on an eighth if it can't be one
            room = min(end, start - start % beat + beat) - start
            if room not in _VALUES and start % 2:
                room = 1
            fits = [v for v in _VALUES if v <= room]
        else:  # compound meters: whole dotted beats, or less than one
            fits = [v for v in _VALUES if v <= end - start
                    and (not bar.compound or v < beat or v % beat == 0)]  # fmt: skip
        n = next(
            v for v in fits if not rest or (start % v == 0 and (bar.compound or v & (v - 1) == 0))
        )
        out.append(n)
        start += n
    return out


def _tied(pitches: tuple[int, ...], length: int, names: dict[int, str]) -> note.GeneralNote:
    ql = length / UNITS
    if not pitches:
        return note.Rest(quarterLength=ql)
    if len(pitches) == 1:
        return note.Note(_pitch(pitches[0], names), quarterLength=ql)
    return m21chord.Chord([_pitch(p, names) for p in pitches], quarterLength=ql)


def _bar_contents(
    events: list[_Event], bar: _Bar, names: dict[int, str]
) -> list[tuple[note.GeneralNote, bool, bool]]:
    """The notes and rests of ``bar``, each with whether it is tied from before and onwards."""
    lo, hi = bar.start, bar.start + bar.length
    inside = [e for e in events if e.start < hi and e.end > lo]
    if not inside:
        rest = note.Rest(quarterLength=bar.length / UNITS)
        rest.fullMeasure = True
        return [(rest, False, False)]
    filled: list[_Event] = []
    pos = lo
    for e in inside:
        if e.start > pos:
            filled.append(_Event(pos, e.start, ()))
        filled.append(e)
        pos = min(e.end, hi)
    if pos < hi:
        filled.append(_Event(pos, hi, ()))
    out: list[tuple[note.GeneralNote, bool, bool]] = []
    for e in filled:
        s, t = max(e.start, lo), min(e.end, hi)
        lengths = _pieces(s - lo, t - lo, bar, rest=not e.pitches)
        for j, n in enumerate(lengths):
            before = j > 0 or e.start < lo
            after = j < len(lengths) - 1 or e.end > hi
            out.append((_tied(e.pitches, n, names), before, after))
    return out


def _tie(element: note.GeneralNote, before: bool, after: bool) -> None:
    if isinstance(element, note.Rest) or not (before or after):
        return
    element.tie = tie.Tie("continue" if before and after else "stop" if before else "start")


def _clef(program: int, pitches: list[int]) -> clef.Clef:
    if program == _VIOLA:
        return clef.AltoClef()
    if program in _BASS_PROGRAMS:
        return clef.BassClef()
    if program in _GUITARS:  # guitar music is written an octave above its sound
        return clef.Treble8vbClef()
    median = statistics.median(pitches) if pitches else 60
    return clef.TrebleClef() if median >= 57 else clef.BassClef()


def _names(tracks: list[symusic.Track]) -> list[str]:
    """Part names: the instrument of composer's "role (Instrument)" names, else the track name;
    instruments that repeat are numbered (Flute 1, Flute 2)."""
    bases: list[str] = []
    for t in tracks:
        # MIDI names may hold control characters (a NUL ends some), which XML cannot.
        text = " ".join("".join(c if c.isprintable() else " " for c in t.name).split())
        m = re.fullmatch(r".*\((.+)\)", text)
        name = (m.group(1) if m else text).strip()
        bases.append(name or _instrument(t.program).bestName() or "Part")
    counts = {b: bases.count(b) for b in bases}
    seen: dict[str, int] = {}
    names: list[str] = []
    for b in bases:
        seen[b] = seen.get(b, 0) + 1
        names.append(f"{b} {seen[b]}" if counts[b] > 1 else b)
    return names


def _instrument(program: int) -> instrument.Instrument:
    try:
        inst = instrument.instrumentFromMidiProgram(program)
    except instrument.InstrumentException:
        inst = instrument.Instrument()
    inst.midiProgram = program
    inst.transposition = None  # a concert-pitch score: pitches are written as they sound
    return inst


def _tempo_marks(score: symusic.Score, bars: list[_Bar]) -> dict[int, tuple[int, int]]:
    """Bar index -> (grid step in the bar, quarter notes a minute): the last tempo change in
    each bar, where its rounded value differs from the mark before (a ramp of many small
    changes gives at most one mark a bar)."""
    tpq, end = score.ticks_per_quarter, bars[-1].start + bars[-1].length
    last: dict[int, tuple[int, int]] = {}
    for t in sorted(score.tempos, key=lambda t: t.time):
        steps = _grid(t.time, tpq)
        if steps < end:
            i = _bar_at(bars, steps)
            last[i] = (steps - bars[i].start, round(t.qpm))
    marks: dict[int, tuple[int, int]] = {}
    shown: int | None = None
    for i, (offset, bpm) in sorted(last.items()):
        if bpm != shown:
            marks[i], shown = (offset, bpm), bpm
    return marks


def _metronome(bpm: int, bar: _Bar) -> tempo.MetronomeMark:
    if bar.compound:  # compound meters count dotted beats
        return tempo.MetronomeMark(number=round(bpm / 1.5), referent=m21duration.Duration(1.5))
    return tempo.MetronomeMark(number=bpm)


def _part(
    index: int,
    track: symusic.Track | None,
    name: str,
    bars: list[_Bar],
    keys: list[key.Key],
    tpq: int,
) -> stream.Part:
    events = _events(track, tpq) if track is not None else []
    program = track.program if track is not None else 0
    part = stream.Part(id=f"P{index + 1}")
    part.partName = name
    inst = _instrument(program)
    inst.partName, inst.partId, inst.instrumentId = name, part.id, f"P{index + 1}-I1"
    previous: tuple[Meter | None, int | None] = (None, None)
    for i, (bar, k) in enumerate(zip(bars, keys, strict=True)):
        m = stream.Measure(number=i + 1)
        if i == 0:
            m.insert(0, inst)
            m.clef = _clef(program, [p for e in events for p in e.pitches])
        if bar.meter != previous[0]:
            m.timeSignature = meter.TimeSignature(f"{bar.meter[0]}/{bar.meter[1]}")
        if k.sharps != previous[1]:
            m.keySignature = key.Key(k.tonic, k.mode)  # a copy: a music21 object has one place
        previous = (bar.meter, k.sharps)
        names = _spelling(k)
        for element, before, after in _bar_contents(events, bar, names):
            _tie(element, before, after)
            m.append(element)
        part.append(m)
    return part


def _chord_symbols(part: stream.Part, track: symusic.Track, bars: list[_Bar], tpq: int) -> None:
    """Each chord symbol ("F#m", "Bb", "E7") of ``track`` above ``part`` where it changes."""
    measures = part.getElementsByClass(stream.Measure)
    for text in track.lyrics:
        found = re.fullmatch(r"([A-G])([#b]?)(m|dim|7|)", text.text)
        if found is None:
            continue
        letter, accidental, kind = found.groups()
        steps = _grid(text.time, tpq)
        i = _bar_at(bars, steps)
        if steps >= bars[i].start + bars[i].length:
            continue
        root = pitch.Pitch(letter + accidental.replace("b", "-"))
        symbol = harmony.ChordSymbol(root=root, kind=_KINDS[kind])
        symbol.writeAsChord = False
        measures[i].insert((steps - bars[i].start) / UNITS, symbol)


def _strip_header(root: ElementTree.Element) -> None:
    """Remove what music21 makes up: the date (which varies between runs, and the file should
    not), its "Music21 Fragment" title and "Music21" as the composer."""
    for parent, tag in (("identification/encoding", "encoding-date"), ("identification", "creator"),
                        (".", "movement-title")):  # fmt: skip
        for holder in root.findall(parent):
            for child in holder.findall(tag):
                holder.remove(child)


def write_musicxml(score: symusic.Score, path: str | Path) -> Path:
    """Write the pitched tracks of ``score`` (ticks) as MusicXML to ``path``; return the path.

    Drum tracks are left out (MusicXML from music21 cannot carry General MIDI percussion), and
    so are tracks without notes (a score with none has one part of rests). The same score
    always gives the same bytes.
    """
    path = Path(path)
    end = _score_end(score)
    bars = _bars(score, end)
    keys = _keys(score, bars)
    tracks = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    names = _names(tracks) if tracks else ["Rest"]  # a silent score still needs one part
    out = stream.Score(id="score")
    parts = [
        _part(i, t, n, bars, keys, score.ticks_per_quarter)
        for i, (t, n) in enumerate(zip(tracks or [None], names, strict=True))
    ]
    for bar_index, (offset, bpm) in _tempo_marks(score, bars).items():
        parts[0].getElementsByClass(stream.Measure)[bar_index].insert(
            offset / UNITS, _metronome(bpm, bars[bar_index])
        )
    for t in score.tracks:
        if t.name == CHORDS_TRACK:
            _chord_symbols(parts[0], t, bars, score.ticks_per_quarter)
    for p in parts:
        out.insert(0, p)
    exporter = ScoreExporter(out)
    _strip_header(exporter.parse())
    with atomic_path(path) as tmp:
        tmp.write_bytes(exporter.asBytes())
    return path
