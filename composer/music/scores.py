"""One score as a :class:`CorpusPiece`: a music21 score or a MIDI file, read into role-labelled
tracks with its key, meters and section starts.

A piece is a ``symusic.Score`` at :data:`TPQ` ticks per quarter with one track per voice role
(the track's ``program`` is the role id, not an instrument), its key, its meters and the ticks
where sections begin. Bar lines computed from the meters fall on the music's real bar lines: a
pickup is padded to a full bar, and a bar left short or long by the notation (the halves of a
bar split by a repeat sign, say) gets its own meter entry.

Scores are built directly from music21 objects rather than through music21's MIDI export, which
deep-copies, always expands repeats, is about 150 times slower and drops notes in some polyphony.
Which files make the corpus, and how they are split, is ``composer.music.corpus``.

It is one module, though longer than most, because the two readers share the role assignment,
the bar layout and the section finding that make a piece of either kind the same thing.
"""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic
from music21 import (
    bar,
    chord,
    dynamics,
    expressions,
    harmony,
    key,
    meter,
    note,
    repeat,
    spanner,
    stream,
    tempo,
)

from composer.errors import ComposerError
from composer.music.keys import KRUMHANSL, find_key
from composer.music.midi import read_score
from composer.music.roles import BASS, MELODY, ROLES

TPQ = 480
USER_STYLE = "user"  # the style of a user's own files when they name none
# Score formats read, best first: where one work exists in several, the corpus keeps the first.
FORMATS = (".mxl", ".musicxml", ".xml", ".krn", ".abc")

_MAX_REPEAT_GROWTH = 4.0  # more than this many plays per written note is a misread repeat
_TOL = 2  # ticks: offsets that differ by less are the same instant (rounding to TPQ)
_DEFAULT_VELOCITY = 80
_VELOCITY = {"ppp": 30, "pp": 40, "p": 55, "mp": 70, "mf": 80, "f": 96, "ff": 112, "fff": 124}
_MINOR_MODES = {"minor", "aeolian", "dorian", "phrygian", "locrian"}
_MAJOR_MODES = {"major", "ionian", "mixolydian", "lydian"}
_SECTION_BARLINES = {"double", "final", "heavy", "heavy-light", "heavy-heavy"}  # music21's names

Meter = tuple[int, int]  # numerator, denominator


@dataclass
class CorpusPiece:
    """One work (or one tune of a collection) ready for tokenising."""

    id: str  # stable: "<collection>/<path inside it>", plus "#<X: number>" for tunes of an opus
    collection: str
    style: str
    title: str
    score: symusic.Score  # TPQ ticks per quarter; one track per role, program = role id
    key_tonic: int  # pitch class 0-11
    key_mode: str  # "major" or "minor"
    meters: list[tuple[int, int, int]]  # (tick, numerator, denominator), first at tick 0
    section_starts: list[int]  # bar-line ticks, 0 first
    n_parts: int  # pitched, non-empty parts in the source (before roles were merged)
    warnings: list[str] = field(default_factory=list)  # what was kept as is, and why

    @property
    def n_notes(self) -> int:
        return sum(len(t.notes) for t in self.score.tracks)


def from_music21(
    score: stream.Stream,
    piece_id: str,
    *,
    collection: str = "user",
    style: str = USER_STYLE,
    title: str | None = None,
    expand_repeats: bool = True,
) -> CorpusPiece:
    """Convert one music21 score (or a single part), expanding its repeats where music21 can.

    The score is mended in place: time and key signatures shared between measures are copied,
    and end repeats without a start repeat get one. Raises ValueError when the score has no
    pitched notes.
    """
    if not isinstance(score, stream.Score):
        score = stream.Score([score])
    warnings: list[str] = []
    _unshare_signatures(score)
    played = score
    if expand_repeats and _has_repeats(score):
        _close_open_repeats(score)
        try:
            played = score.expandRepeats()
        except Exception as exc:  # music21 raises several types for badly formed repeats
            warnings.append(f"repeats not expanded: {type(exc).__name__}: {exc}"[:200])
        growth = _count_notes(played) / max(1, _count_notes(score))
        if growth > _MAX_REPEAT_GROWTH:
            # Repeat signs music21 misreads; the written score is the better data.
            warnings.append(f"repeats not expanded: they would play the notes {growth:.1f} times")
            played = score
    parts = list(played.parts) or [played]
    flats = [p.flatten() for p in parts]

    measures = list(parts[0].getElementsByClass(stream.Measure))
    layout = _bar_layout(measures, flats[0])
    if layout.irregular:
        warnings.append(f"{layout.irregular} irregular bars given their own meter")
    if layout.unexpressed:
        warnings.append(f"{layout.unexpressed} irregular bars not expressible as a meter")
    shift = layout.shift

    sources = []
    for flat in flats:
        notes = _part_notes(flat, shift)
        if notes:
            sources.append(notes)
    if not sources:
        raise ValueError("no pitched notes")

    tonic, mode, key_changes = _key_of(score, flats[0], shift)
    out = symusic.Score(TPQ)
    for tick, num, den in layout.meters:
        out.time_signatures.append(symusic.TimeSignature(tick, num, den))
    for tick, sharps, minor in key_changes:
        out.key_signatures.append(symusic.KeySignature(tick, sharps, int(minor)))
    for tick, qpm in _tempos(flats[0], shift):
        out.tempos.append(symusic.Tempo(tick, qpm=qpm))
    for track in _role_tracks(sources):
        out.tracks.append(track)

    fermatas = [t for flat in flats for t in _fermata_ticks(flat, shift)]
    sections = _section_starts(layout, fermatas, key_changes, out.end())
    return CorpusPiece(
        id=piece_id,
        collection=collection,
        style=style,
        title=title or _title(score) or piece_id,
        score=out,
        key_tonic=tonic,
        key_mode=mode,
        meters=layout.meters,
        section_starts=sections,
        n_parts=len(sources),
        warnings=warnings,
    )


def _title(score: stream.Score) -> str | None:
    """The score's title; not the file name, which music21 gives untitled MusicXML files."""
    title = score.metadata.bestTitle if score.metadata is not None else None
    return title if title and not title.endswith(FORMATS) else None


# --- music21 score -> notes ------------------------------------------------------------------


def _ticks(quarters: float) -> int:
    return round(float(quarters) * TPQ)


def _unshare_signatures(score: stream.Score) -> None:
    """Give every measure its own TimeSignature and KeySignature objects.

    music21's ABC reader re-uses one object when a meter or key returns (M:4/8 ... M:1/4 ...
    M:4/8). A shared object has one offset, so flatten() loses its first use and repeat expansion
    fails with "... is already found in this Stream".
    """
    seen: set[int] = set()
    for m in score.recurse().getElementsByClass(stream.Measure):
        for sig in list(m.getElementsByClass((meter.TimeSignature, key.KeySignature))):
            if id(sig) in seen:
                m.replace(sig, copy.deepcopy(sig))
            else:
                seen.add(id(sig))


def _has_repeats(score: stream.Score) -> bool:
    first = score.parts.first() or score
    marks = first.recurse().getElementsByClass((bar.Repeat, repeat.RepeatExpression))
    return marks.first() is not None


def _count_notes(score: stream.Score) -> int:
    return len(score.recurse().notes)


def _close_open_repeats(score: stream.Score) -> None:
    """Start each end repeat that has no start repeat right after the previous end repeat.

    Such a repeat means "play this strain again", but music21 goes back to the beginning of
    the piece, so tunes of many strains (ABC's "A :| B :| C :|") grow exponentially.
    """
    for part in score.parts:
        measures = list(part.getElementsByClass(stream.Measure))
        in_ending = {
            id(m)
            for bracket in part.spanners.getElementsByClass(spanner.RepeatBracket)
            for m in bracket.getSpannedElements()
        }
        started, after_end = False, None
        for k, m in enumerate(measures):
            if isinstance(m.leftBarline, bar.Repeat) and m.leftBarline.direction == "start":
                started = True
            if isinstance(m.rightBarline, bar.Repeat) and m.rightBarline.direction == "end":
                if not started and after_end is not None:
                    # The strain begins after the previous repeat's endings.
                    first = next(
                        (i for i in range(after_end, k + 1) if id(measures[i]) not in in_ending),
                        after_end,
                    )
                    measures[first].leftBarline = bar.Repeat(direction="start")
                started, after_end = False, k + 1


def _part_notes(flat: stream.Stream, shift: int) -> list[list[int]]:
    """[start, end, pitch, velocity] of a flattened part's sounding notes, ties merged.

    A tie is merged only into a note of the same pitch that starts where the tied note ends:
    some files hold ties that start and never stop, or stop far from any start.
    """
    levels = [
        (_ticks(d.offset), _VELOCITY[d.value])
        for d in flat.getElementsByClass(dynamics.Dynamic)
        if d.value in _VELOCITY
    ]
    level_ticks = [t for t, _ in levels]
    notes: list[list[int]] = []
    open_ties: dict[int, int] = {}
    for el in flat.notes:
        if isinstance(el, harmony.Harmony) or el.duration.isGrace:
            continue  # chord symbols are annotations; grace notes take no time
        start = _ticks(el.offset)
        end = _ticks(el.offset + el.quarterLength)
        members = el.notes if isinstance(el, chord.Chord) else (el,)
        for n in members:
            if not isinstance(n, note.Note) or not 0 <= n.pitch.midi <= 127:
                continue  # unpitched percussion
            pitch = n.pitch.midi
            tie = n.tie if n.tie is not None else el.tie
            chained = tie is not None and tie.type in ("start", "continue")
            held = open_ties.pop(pitch, None)
            if held is not None and abs(notes[held][1] - start) <= _TOL:
                notes[held][1] = max(notes[held][1], end)
                if chained:
                    open_ties[pitch] = held
                continue
            i = bisect.bisect_right(level_ticks, start) - 1
            velocity = levels[i][1] if i >= 0 else _DEFAULT_VELOCITY
            notes.append([start, end, pitch, velocity])
            if chained:
                open_ties[pitch] = len(notes) - 1
    for n in notes:
        n[0] += shift
        n[1] += shift
    return notes


def _role_tracks(sources: list[list[list[int]]]) -> list[symusic.Track]:
    """One track per role: highest mean pitch is the melody, lowest the bass, the rest inner
    voices in descending order, those beyond four merged into the last inner voice."""
    order = sorted(range(len(sources)), key=lambda i: -np.mean([n[2] for n in sources[i]]))
    roles: dict[int, list[list[int]]] = {}
    for rank, i in enumerate(order):
        if rank == 0:
            role = MELODY
        elif rank == len(order) - 1:
            role = BASS
        else:
            role = min(rank, BASS - 1)
        roles.setdefault(role, []).extend(sources[i])
    tracks = []
    for role in sorted(roles):
        track = symusic.Track(ROLES[role], role, False)
        for start, end, pitch, velocity in sorted(roles[role]):
            track.notes.append(symusic.Note(start, max(1, end - start), pitch, velocity))
        tracks.append(track)
    return tracks


# --- bars, meters, sections ------------------------------------------------------------------


@dataclass
class _Layout:
    shift: int  # ticks added to every event so that a pickup fills a whole bar
    meters: list[tuple[int, int, int]]
    meter_changes: list[int]  # ticks where a written meter changes
    measure_starts: list[int]  # shifted
    after_barline: list[int]  # shifted starts of measures that follow a section barline
    key_measures: list[int]  # shifted starts of measures with a written key change
    irregular: int = 0
    unexpressed: int = 0


def _bar_ticks(m: Meter) -> int:
    return m[0] * 4 * TPQ // m[1]


def _meter_of_length(length: int, denominator: int) -> Meter | None:
    """The meter whose bar lasts ``length`` ticks, in the given note value or a finer one."""
    den = denominator
    while den <= 64:
        num, rest = divmod(length * den, 4 * TPQ)
        if rest == 0 and num > 0:
            return num, den
        den *= 2
    return None


def _bar_layout(measures: list[stream.Measure], flat: stream.Stream) -> _Layout:
    """Meters whose bar lines fall on the measures' real bar lines.

    A short first measure is a pickup: everything moves later so that it ends a whole bar. After
    that a measure must start on a bar line, unless it fits in the rest of a bar that the
    previous measure left open (the two halves of a bar split by a repeat sign). Where a measure
    would start inside a bar otherwise, that bar is cut short with a meter of its own and the
    measure's meter starts again with the measure.
    """
    if not measures:
        written = _written_meters(flat)
        return _Layout(0, written, [t for t, _, _ in written[1:]], [0], [], [])
    starts = [_ticks(m.offset) for m in measures]
    lengths = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    lengths.append(_ticks(measures[-1].duration.quarterLength))
    written: list[Meter | None] = []
    for m in measures:
        ts = m.timeSignature
        written.append((ts.numerator, ts.denominator) if ts is not None else None)
    first = written[0] or _first_meter(flat)
    short = _bar_ticks(first) - lengths[0]
    shift = short if len(measures) > 1 and short > _TOL else 0

    entries: dict[int, Meter] = {0: first}
    changes: list[int] = []
    anchor, current = 0, first
    irregular = unexpressed = 0
    for start, length, ts in zip(starts[1:], lengths[1:], written[1:], strict=True):
        start += shift
        own = ts or current
        bar_len = _bar_ticks(current)
        off = (start - anchor) % bar_len
        if off > bar_len - _TOL:
            off = 0
        if off > _TOL and (own != current or off + length > bar_len + _TOL):
            irregular += 1
            cut = _meter_of_length(off, current[1])
            if cut is None:
                unexpressed += 1
            else:
                entries[start - off] = cut
            entries[start] = own
            anchor = start
        if own != current:
            changes.append(start)
            entries[start] = own
            anchor = start
        current = own

    meters: list[tuple[int, int, int]] = []
    for tick in sorted(entries):
        if not meters or meters[-1][1:] != entries[tick]:
            meters.append((tick, *entries[tick]))
    shifted = [s + shift for s in starts]
    if shift:
        shifted[0] = 0  # the padded pickup bar
    after_barline = []
    key_measures = []
    previous_key = None
    for k, m in enumerate(measures):
        right, left = m.rightBarline, m.leftBarline
        if k + 1 < len(measures) and _is_section_barline(right):
            after_barline.append(shifted[k + 1])
        if k and _is_section_barline(left):
            after_barline.append(shifted[k])
        ks = m.keySignature
        if ks is not None:
            signature = (ks.sharps, getattr(ks, "mode", None))
            if previous_key is not None and signature != previous_key:
                key_measures.append(shifted[k])
            previous_key = signature
    return _Layout(
        shift, meters, changes, shifted, after_barline, key_measures, irregular, unexpressed
    )


def _is_section_barline(line: bar.Barline | None) -> bool:
    return line is not None and (isinstance(line, bar.Repeat) or line.type in _SECTION_BARLINES)


def _written_meters(flat: stream.Stream) -> list[tuple[int, int, int]]:
    """The time signatures of a measureless part, one per tick, from tick 0."""
    entries: dict[int, Meter] = {}
    for ts in flat.getElementsByClass(meter.TimeSignature):
        entries.setdefault(_ticks(ts.offset), (ts.numerator, ts.denominator))
    if 0 not in entries:
        entries[0] = next(iter(entries.values()), (4, 4))
    meters: list[tuple[int, int, int]] = []
    for tick in sorted(entries):
        if not meters or meters[-1][1:] != entries[tick]:
            meters.append((tick, *entries[tick]))
    return meters


def _first_meter(flat: stream.Stream) -> Meter:
    ts = flat.getElementsByClass(meter.TimeSignature).first()
    return (ts.numerator, ts.denominator) if ts is not None else (4, 4)


def bar_lines(meters: list[tuple[int, int, int]], end: int) -> list[int]:
    """Bar-line ticks from 0 to ``end`` implied by (tick, numerator, denominator) meters."""
    lines = []
    bounds = [t for t, _, _ in meters[1:]] + [end + 1]
    for (tick, num, den), until in zip(meters, bounds, strict=True):
        lines.extend(range(tick, min(until, end + 1), _bar_ticks((num, den))))
    return lines


def _fermata_ticks(flat: stream.Stream, shift: int) -> list[int]:
    return [
        _ticks(n.offset) + shift
        for n in flat.notesAndRests
        if any(isinstance(e, expressions.Fermata) for e in n.expressions)
    ]


def _section_starts(
    layout: _Layout, fermatas: list[int], key_changes: list[tuple[int, int, bool]], end: int
) -> list[int]:
    """Bar lines where a section begins: after a section barline or a fermata's measure, and
    where the meter or key changes. A section that opens with a pickup starts at its first
    full bar."""
    candidates = [*layout.after_barline, *layout.meter_changes, *layout.key_measures]
    candidates += [t for t, _, _ in key_changes[1:]]
    starts = layout.measure_starts
    for tick in fermatas:
        k = bisect.bisect_right(starts, tick)
        if k < len(starts):
            candidates.append(starts[k])
    lines = bar_lines(layout.meters, end)
    sections = {0}
    for tick in candidates:
        i = bisect.bisect_left(lines, tick - _TOL)
        if i < len(lines) and lines[i] < end:
            sections.add(lines[i])
    return sorted(sections)


# --- key, tempo ------------------------------------------------------------------------------


def _key_of(
    score: stream.Score, flat: stream.Stream, shift: int
) -> tuple[int, str, list[tuple[int, int, bool]]]:
    """(tonic pitch class, mode, [(tick, sharps, minor)]): the written key where it names a
    mode, else music21's key analysis (Kern and Palestrina give bare key signatures)."""
    written: list[tuple[int, key.KeySignature]] = []
    for ks in flat.getElementsByClass(key.KeySignature):
        tick = _ticks(ks.offset) + shift if ks.offset else 0
        if not written or written[-1][0] != tick:
            written.append((tick, ks))
    first = written[0][1] if written else None
    mode = _major_minor(getattr(first, "mode", None))
    if isinstance(first, key.Key) and mode is not None:
        tonic = first.tonic.pitchClass
    else:
        found = score.analyze("key")
        tonic, mode = found.tonic.pitchClass, _major_minor(found.mode) or "major"
        if not written:
            written = [(0, found)]
    changes = []
    for tick, ks in written:
        own = _major_minor(getattr(ks, "mode", None))
        minor = (own or mode) == "minor"
        if not changes or changes[-1][1:] != (ks.sharps, minor):
            changes.append((tick, ks.sharps, minor))
    return tonic, mode, changes


def _major_minor(mode: str | None) -> str | None:
    if mode in _MINOR_MODES:
        return "minor"
    if mode in _MAJOR_MODES:
        return "major"
    return None


def _tempos(flat: stream.Stream, shift: int) -> list[tuple[int, float]]:
    """Metronome marks as (tick, quarter notes per minute); 120 (MIDI's default) at the start
    when the score has none there."""
    tempos: dict[int, float] = {}
    for mark in flat.getElementsByClass(tempo.MetronomeMark):
        qpm = mark.getQuarterBPM()
        if qpm:
            tempos.setdefault(_ticks(mark.offset) + shift if mark.offset else 0, float(qpm))
    tempos.setdefault(0, 120.0)
    return sorted(tempos.items())


# --- MIDI ------------------------------------------------------------------------------------


def from_midi(path: Path, rel: str, collection: str, style: str) -> CorpusPiece:
    """A MIDI file: drums dropped, roles from each track's mean pitch, its own meters and keys
    (a key estimated from the notes where the file names none)."""
    midi = read_score(path)
    if midi.ticks_per_quarter != TPQ:
        midi = midi.resample(TPQ, min_dur=1)
    sources = []
    for track in midi.tracks:
        if track.is_drum or not len(track.notes):
            continue
        arr = track.notes.numpy()
        sources.append(
            [
                [int(t), int(t + d), int(p), int(v)]
                for t, d, p, v in zip(
                    arr["time"], arr["duration"], arr["pitch"], arr["velocity"], strict=True
                )
            ]
        )
    if not sources:
        raise ComposerError(path, "has no pitched notes")
    out = symusic.Score(TPQ)
    for track in _role_tracks(sources):
        out.tracks.append(track)
    entries: dict[int, Meter] = {}
    for ts in midi.time_signatures:
        entries.setdefault(ts.time, (ts.numerator, ts.denominator))
    entries.setdefault(0, (4, 4))
    meters: list[tuple[int, int, int]] = []
    for tick in sorted(entries):
        if not meters or meters[-1][1:] != entries[tick]:
            meters.append((tick, *entries[tick]))
    for tick, num, den in meters:
        out.time_signatures.append(symusic.TimeSignature(tick, num, den))
    changes = [(k.time, k.key, bool(k.tonality)) for k in midi.key_signatures]
    if changes:
        _, sharps, minor = changes[0]
        tonic = (sharps * 7 + (9 if minor else 0)) % 12
        mode = "minor" if minor else "major"
    else:
        tonic, mode = _estimate_key(sources)
    for tick, sharps, minor in changes:
        out.key_signatures.append(symusic.KeySignature(tick, sharps, int(minor)))
    for t in midi.tempos:
        out.tempos.append(symusic.Tempo(t.time, qpm=t.qpm))
    layout = _Layout(0, meters, [t for t, _, _ in meters[1:]], [0], [], [])
    return CorpusPiece(
        id=rel,
        collection=collection,
        style=style,
        title=path.stem,
        score=out,
        key_tonic=tonic,
        key_mode=mode,
        meters=meters,
        section_starts=_section_starts(layout, [], changes, out.end()),
        n_parts=len(sources),
    )


def _estimate_key(sources: list[list[list[int]]]) -> tuple[int, str]:
    """The key of the duration-weighted pitch-class histogram (Krumhansl-Kessler profiles)."""
    hist = np.zeros(12)
    for notes in sources:
        for start, end, pitch, _ in notes:
            hist[pitch % 12] += end - start
    return find_key(hist, KRUMHANSL)
