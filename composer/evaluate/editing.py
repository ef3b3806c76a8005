"""``composer eval edit``: does a span edit keep the rest, and do its words move the span?

For each score (MIDI files from anywhere: drums, tempo maps and odd meters included; or
composer's output folders, whose plan.json the edit reads), one span of four bars (fewer in a
shorter score) is chosen by a seeded draw among the bars where the score's melody (its highest
pitched part, composer.edit.span.track_roles) plays, inside one meter. The infill adapter
writes the melody of that span again (composer.edit.span.regenerate) for each request: "more
intense", "sparser", and two styles ("in the style of a chorale", "... of a reel"). Each
result is checked and measured:

- kept: every note outside the span's melody (pitch, onset, duration, velocity, program, drum
  flag, track order), the tempo map, time and key signatures and markers identical;
- moved: the span's melody onsets and its mean velocity against the original's; "more intense"
  moves the span when either rises, "sparser" when its onsets fall; a style request when the
  style classifier (composer.evaluate.styles) gives the span's melody a higher probability of
  that style than it gave the original's;
- consonance: the share of the span's melody attacks consonant with the other pitched tracks
  sounding then (composer.edit.span.consonance), the original's and the edit's, where the
  score has other pitched parts in the span.

Each score in a major key with a melody and other parts also has its first KEY_BARS bars moved
into the parallel minor: by degree alone (composer.edit.transforms.change_key), and with the
accompaniment written again against the melody (composer.edit.span.reharmonise). Measured on
both: the melody's strong-beat notes that are tones of the chord sounding (musicianship's
measure), and the bars whose accompaniment makes a dominant chord that carry its leading tone
(a major dominant, as the minor's cadences have it, not the minor one degrees leave).

Each composer folder that scores a video also gets new tempi (TEMPI times its tempo), set as
`--tempo` sets them: the tempo map scaled alone, and conformed (composer.edit.conform: bars
dropped or repeated between the cuts). Measured from the score in seconds: each cut marker's
distance from its cut in the video, the music's end from the video's, the time-weighted mean
distance of the tempo from the one asked for, and for each seam the cosine likeness of the bars
it joins against the mean of every place the run could have gone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import symusic

from composer.errors import ComposerError
from composer.outputs import atomic_write_text
from composer.progress import ProgressFn, no_progress

SPAN = 4  # bars
TARGET = 0.80  # share of trials "more intense" and "sparser" move the span as they ask
REQUESTS = ("more intense", "sparser", "in the style of a chorale", "in the style of a reel")
KEY_BARS = 16  # bars of each score moved into the minor
TEMPI = (0.8, 0.9, 1.1, 1.25)  # new tempi asked of a scored video, times its first tempo


@dataclass
class Trial:
    score: str
    bars: tuple[int, int]  # 1-based, inclusive
    request: str
    onsets: tuple[int, int]  # the span's melody onsets before, after
    velocity: tuple[float, float]  # their mean velocity before, after
    style: tuple[float, float] | None  # a style request: the classifier's probability of it
    moved: bool
    kept: bool  # everything outside the span's melody identical
    consonance: tuple[float, float] | None = None  # the melody against the others: before, after


@dataclass
class KeyTrial:
    score: str
    key: str  # the parallel minor asked for
    # (met, counted) by degree alone, then written again:
    chord_tones: tuple[int, int, int, int]  # the melody's strong-beat notes on chord tones
    dominants: tuple[int, int, int, int]  # bars on the dominant that carry the leading tone
    kept: bool  # the melody and drums as the move by degree leaves them


@dataclass
class TempoTrial:
    score: str
    asked: float  # bpm
    refused: str | None  # why conforming could not come nearer (then the rest are the scaled)
    bars: tuple[int, int]  # before, after
    # (scaled, conformed):
    cut_ms: tuple[float, float] | None  # the worst cut marker's distance from its cut
    end_s: tuple[float, float]  # the music's end from the video's
    tempo_off: tuple[float, float]  # time-weighted mean |tempo / asked - 1|
    seams: list[tuple[float, float]] = field(default_factory=list)  # chosen, mean of possible


@dataclass
class EditReport:
    trials: list[Trial] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "FILE: why"
    keys: list[KeyTrial] = field(default_factory=list)
    tempi: list[TempoTrial] = field(default_factory=list)

    def rate(self, request: str) -> tuple[int, int]:
        mine = [t for t in self.trials if t.request == request]
        return sum(t.moved for t in mine), len(mine)

    def table(self) -> str:
        lines = [f"{'score':40s} {'bars':>7s} {'request':27s} {'onsets':>9s} {'velocity':>11s} "
                 f"{'style p':>9s} {'moved':>5s} {'kept':>4s}"]  # fmt: skip
        for t in self.trials:
            style = f"{t.style[0]:.2f}>{t.style[1]:.2f}" if t.style else ""
            lines.append(
                f"{t.score[:40]:40s} {t.bars[0]:3d}-{t.bars[1]:<3d} {t.request:27s} "
                f"{t.onsets[0]:4d}>{t.onsets[1]:<4d} {t.velocity[0]:5.1f}>{t.velocity[1]:<5.1f} "
                f"{style:>9s} {'yes' if t.moved else 'no':>5s} {'yes' if t.kept else 'NO':>4s}"
            )
        lines.append("")
        for request in REQUESTS[:2]:
            met, n = self.rate(request)
            lines.append(f"{request!r} moves the span: {met}/{n} ({met / max(n, 1):.0%}; target "
                         f"{TARGET:.0%})")  # fmt: skip
        for request in REQUESTS[2:]:
            p = np.array([t.style for t in self.trials if t.request == request]).reshape(-1, 2)
            if not len(p):
                continue
            lines.append(f"{request!r}: the classifier's mean probability of the style "
                         f"{p[:, 0].mean():.3f} before, {p[:, 1].mean():.3f} after; it rose in "
                         f"{(p[:, 1] > p[:, 0]).sum()}, fell in {(p[:, 1] < p[:, 0]).sum()} "
                         f"of {len(p)}")  # fmt: skip
        both = np.array([t.consonance for t in self.trials if t.consonance]).reshape(-1, 2)
        if len(both):
            lines.append(f"the span's melody attacks consonant with the other tracks: "
                         f"{both[:, 0].mean():.1%} before, {both[:, 1].mean():.1%} after "
                         f"({len(both)} edits with other parts)")  # fmt: skip
        more = [t for t in self.trials if t.request == REQUESTS[0]]
        denser = sum(t.onsets[1] > t.onsets[0] for t in more)
        lines.append(f"'more intense' raises the span's onsets: {denser}/{len(more)}")
        kept = sum(t.kept for t in self.trials)
        lines.append(f"everything outside the span kept: {kept}/{len(self.trials)}")
        lines += [f"skipped: {s}" for s in self.skipped]
        if self.keys:
            lines += ["", f"into the parallel minor (first {KEY_BARS} bars): {'score':34s} "
                      "chord tones (degree > again)  leading-tone dominants   kept"]  # fmt: skip
            for t in self.keys:
                c, d = t.chord_tones, t.dominants
                lines.append(f"{t.score[:40]:40s} {t.key:10s} {c[0]:3d}/{c[1]:<3d} > "
                             f"{c[2]:3d}/{c[3]:<3d}     {d[0]:3d}/{d[1]:<3d} > {d[2]:3d}/{d[3]:<3d}"
                             f"   {'yes' if t.kept else 'NO'}")  # fmt: skip
            total = np.array([t.chord_tones + t.dominants for t in self.keys]).sum(0)
            share = lambda a, b: f"{a}/{b} ({a / max(b, 1):.0%})"  # noqa: E731
            lines.append(f"melody on chord tones: {share(*total[:2])} by degree, "
                         f"{share(*total[2:4])} written again; dominant bars with the leading "
                         f"tone: {share(*total[4:6])} by degree, {share(*total[6:])} written "
                         f"again; melody and drums kept: {sum(t.kept for t in self.keys)}/"
                         f"{len(self.keys)}")  # fmt: skip
        if self.tempi:
            lines += ["", self._tempo_table()]
        return "\n".join(lines)

    def _tempo_table(self) -> str:
        lines = [f"a new tempo on a scored video: {'score':28s} {'bpm':>6s} {'bars':>7s} "
                 f"{'cut ms scaled>conformed':>24s} {'end s':>12s} {'tempo off':>13s}"]  # fmt: skip
        for t in self.tempi:
            cut = f"{t.cut_ms[0]:8.1f} > {t.cut_ms[1]:<6.1f}" if t.cut_ms else ""
            lines.append(f"{t.score[:59]:59s} {t.asked:6.1f} {t.bars[0]:3d}>{t.bars[1]:<3d} "
                         f"{cut:>24s} {t.end_s[0]:5.2f}>{t.end_s[1]:<5.2f} "
                         f"{t.tempo_off[0]:5.1%}>{t.tempo_off[1]:<5.1%}"
                         f"{'  refused: ' + t.refused if t.refused else ''}")  # fmt: skip
        cuts = [t.cut_ms for t in self.tempi if t.cut_ms]
        on = [sum(c[k] <= 5 for c in cuts) for k in (0, 1)]
        ends = [sum(t.end_s[k] <= 0.05 for t in self.tempi) for k in (0, 1)]
        off = np.array([t.tempo_off for t in self.tempi]).mean(0)
        seams = np.array([s for t in self.tempi for s in t.seams]).reshape(-1, 2)
        n = len(self.tempi)
        return "\n".join([*lines, "",
            f"cuts within 5 ms of their beat: {on[0]}/{len(cuts)} scaled, {on[1]}/{len(cuts)} "
            f"conformed; music ending within 50 ms of the video: {ends[0]}/{n} scaled, "
            f"{ends[1]}/{n} conformed",
            f"tempo off the one asked (time-weighted mean): {off[0]:.1%} scaled, {off[1]:.1%} "
            f"conformed; refused (nothing would change): "
            f"{sum(t.refused is not None for t in self.tempi)}/{n}",
            f"seams: the bars joined alike by cosine {seams[:, 0].mean():.2f}, against "
            f"{seams[:, 1].mean():.2f} on average where the run could have gone "
            f"({len(seams)} runs)" if len(seams) else "seams: none"])  # fmt: skip


def eval_edit(
    files: list[str | Path],
    *,
    trials: int = 0,
    seed: int = 0,
    out: str | Path | None = None,
    progress: ProgressFn = no_progress,
) -> EditReport:
    """Edit a span of each usable score of ``files`` (MIDI files or composer output folders,
    sorted; ``trials`` > 0: the first that many) with each request of REQUESTS; ``out``: a
    folder for edit.txt and edit.json."""
    from composer.edit.editor import folder_plan
    from composer.edit.span import track_roles
    from composer.evaluate.styles import StyleClassifier
    from composer.model.checkpoint import cached_checkpoint
    from composer.music.midi import bar_lines, read_score

    classifier = StyleClassifier.load()
    tok = cached_checkpoint().tokenizer
    report = EditReport()
    rng = np.random.default_rng(seed)
    paths = sorted(Path(f) for f in files)
    used = 0
    for k, path in enumerate(paths):
        if used == trials > 0:
            break
        progress("eval edit", k, len(paths))
        midi = path / "score.mid" if path.is_dir() else path
        name = f"{path.name}/score.mid" if path.is_dir() else path.name
        try:
            score = read_score(midi)
            roles = track_roles(score)
            if not roles:
                raise ComposerError(midi, "has no pitched notes")
            melody = next(i for i, r in roles.items() if 0 in r)
            lines = bar_lines(score)
            lo, span = _span_start(score, melody, lines, rng)
        except ComposerError as e:
            report.skipped.append(f"{name}: {e.problem}")
            continue
        plan = folder_plan(midi.parent) if path.is_dir() else None
        try:
            report.trials += _trials(
                score, name, melody, lo, span, lines, plan, seed, classifier, tok
            )
        except ComposerError as e:  # a request the decoder cannot serve (a meter it lacks)
            report.skipped.append(f"{name}: {e.problem}")
            continue
        if (trial := _key_trial(score, name, lines, plan, seed)) is not None:
            report.keys.append(trial)
        if path.is_dir():
            report.tempi += _tempo_trials(path, name)
        used += 1
    progress("eval edit", len(paths), len(paths))
    if out is not None:
        atomic_write_text(Path(out) / "edit.txt", report.table() + "\n")
        atomic_write_text(Path(out) / "edit.json", json.dumps(asdict(report), indent=1))
    return report


def _trials(score, name, melody, lo, span, lines, plan, seed, classifier, tok) -> list[Trial]:
    """One trial per request of REQUESTS on the melody of bars [lo, lo + span)."""
    from composer.edit.span import consonance, regenerate
    from composer.music.qualities import forms

    start, stop = lines[lo], lines[lo + span]
    others = any(n.time < stop and n.end > start for i, t in enumerate(score.tracks)
                 if i != melody and not t.is_drum for n in t.notes)  # fmt: skip
    out = []
    for request in REQUESTS:
        (edited,) = regenerate(score, (lo, lo + span), [melody], request, seed, 1, plan=plan,
                               starts=lines)  # fmt: skip
        before, after = _span(score, melody, start, stop), _span(edited, melody, start, stop)
        style = None
        if request == REQUESTS[0]:
            moved = after[0] > before[0] or after[1] > before[1]
        elif request == REQUESTS[1]:
            moved = after[0] < before[0]
        else:
            target = classifier.styles.index(forms()[request.split()[-1]].style)
            style = tuple(_style_p(classifier, tok, s, melody, start, stop, target)
                          for s in (score, edited))  # fmt: skip
            moved = style[1] > style[0]
        agree = tuple(consonance(s, [melody], start, stop) for s in (score, edited))
        out.append(Trial(name, (lo + 1, lo + span), request, (before[0], after[0]),
                         (before[1], after[1]), style, moved,
                         _kept(score, edited, melody, start, stop),
                         agree if others else None))  # fmt: skip
    return out


def _key_trial(score, name, lines, plan, seed) -> KeyTrial | None:
    """The first KEY_BARS bars of a major score with other parts moved into the parallel
    minor, by degree and written again; None for a score that is not such."""
    from composer.edit.span import reharmonise, track_roles
    from composer.edit.transforms import change_key, score_key
    from composer.evaluate.musicianship import melody_chord_tones
    from composer.music.keys import key_name
    from composer.music.roles import MELODY

    tonic, mode = score_key(score)
    head = score.clip(0, lines[min(KEY_BARS, len(lines) - 1)])
    roles = track_roles(head)  # the head's own parts: the score's melody may not play in it
    melody = next((i for i, rs in roles.items() if rs == (MELODY,)), None)
    if mode != "major" or len(roles) < 2 or melody is None:
        return None
    minor = key_name(tonic, "minor")
    try:
        moved = change_key(head, minor)
        again, _ = reharmonise(moved, seed, plan, melody=melody)
    except ComposerError:  # a pitch the move would take out of MIDI's range
        return None
    same = [i for i, t in enumerate(moved.tracks) if i == melody or t.is_drum]
    kept = all(moved.tracks[i].notes == again.tracks[i].notes for i in same)
    ends = lines[: KEY_BARS + 1]
    return KeyTrial(name, minor, melody_chord_tones(moved) + melody_chord_tones(again),
                    _dominants(moved, melody, ends, tonic) + _dominants(again, melody, ends, tonic),
                    kept)  # fmt: skip


def _dominants(score, melody: int, lines: list[int], tonic: int) -> tuple[int, int]:
    """(bars whose accompaniment's chord is the dominant's with the leading tone, bars whose
    chord is rooted on the dominant), over the bars between ``lines``."""
    from composer.music.harmony import CHORDS, window_chords

    dominant = [{(tonic + 7 + i) % 12 for i in c} for c in CHORDS]
    others = [i for i in range(len(score.tracks)) if i != melody]
    major = counted = 0
    for tones in window_chords(score, others, lines):
        if tones in dominant:
            counted += 1
            major += (tonic + 11) % 12 in tones
    return major, counted


def _span_start(score, melody: int, lines: list[int], rng) -> tuple[int, int]:
    """A first bar (0-based) and a length (SPAN bars, fewer in a short score) of bars in one
    meter where the melody plays in each."""
    changes = {ts.time for ts in score.time_signatures}
    onsets = np.array([n.time for n in score.tracks[melody].notes])
    plays = [((onsets >= lines[k]) & (onsets < lines[k + 1])).any() for k in
             range(len(lines) - 1)]  # fmt: skip
    for span in range(SPAN, 0, -1):
        ok = [b for b in range(len(lines) - span) if all(plays[b : b + span])
              and not any(lines[b] < t < lines[b + span] for t in changes)]  # fmt: skip
        if ok:
            return int(rng.choice(ok)), span
    raise ComposerError(None, "the melody plays in no bar")


def _style_p(classifier, tok, score: symusic.Score, track: int, lo: int, hi: int, target: int):
    """The classifier's probability of style ``target`` for ``track``'s notes in [lo, hi)."""
    from composer.evaluate.styles import excerpt_features

    one = symusic.Score(score.ticks_per_quarter)
    sigs = [ts for ts in score.time_signatures if ts.time <= lo]
    num, den = (sigs[-1].numerator, sigs[-1].denominator) if sigs else (4, 4)
    one.time_signatures.append(symusic.TimeSignature(0, num, den))
    part = symusic.Track("melody", 0, False)
    part.notes.extend(symusic.Note(n.time - lo, min(n.duration, hi - n.time), n.pitch, 80)
                      for n in score.tracks[track].notes if lo <= n.time < hi)  # fmt: skip
    one.tracks.append(part)
    ids = tok.encode(one, "other", (0, "major"))
    return float(classifier.probabilities(excerpt_features(tok, ids))[0, target])


def _span(score: symusic.Score, track: int, lo: int, hi: int) -> tuple[int, float]:
    notes = [n for n in score.tracks[track].notes if lo <= n.time < hi]
    return len({n.time for n in notes}), float(np.mean([n.velocity for n in notes]) if notes else 0)


def _kept(a: symusic.Score, b: symusic.Score, track: int, lo: int, hi: int) -> bool:
    """Whether every note but ``track``'s attacked in [lo, hi), and every map, is the same."""

    def notes(s: symusic.Score) -> list:
        return [(i, t.program, t.is_drum, sorted((n.time, n.duration, n.pitch, n.velocity)
                 for n in t.notes if i != track or not lo <= n.time < hi))
                for i, t in enumerate(s.tracks)]  # fmt: skip

    def maps(s: symusic.Score) -> list:
        return [[(x.time, x.mspq) for x in s.tempos],
                [(x.time, x.numerator, x.denominator) for x in s.time_signatures],
                [(x.time, x.key, x.tonality) for x in s.key_signatures],
                [(x.time, x.text) for x in s.markers]]  # fmt: skip

    return notes(a) == notes(b) and maps(a) == maps(b)


def _tempo_trials(folder: Path, name: str) -> list[TempoTrial]:
    """TEMPI asked of the score in ``folder`` where it scores a video, scaled and conformed."""
    from composer.edit import conform, transforms
    from composer.edit.editor import load_score
    from composer.music.midi import bar_lines
    from composer.types import Plan

    record = json.loads((folder / "plan.json").read_text())
    plan = Plan.from_dict(record["plan"])
    score = load_score(folder / "score.mid")
    if not record.get("video") or not conform.fits(score, plan):
        return []
    cuts = [h.time for h in plan.hit_points if h.kind == "cut"]
    chroma = conform.bar_chroma(score, bar_lines(score))
    out = []
    for factor in TEMPI:
        asked = round(plan.tempo.value * factor, 1)
        scaled = transforms.set_tempo(score, asked)
        try:
            fitted, refused = conform.conform(score, plan, asked), None
        except ComposerError as e:
            fitted, refused = None, e.problem
        new = fitted.score if fitted else scaled
        measured = [_seconds_measures(s, cuts, plan.duration.value, asked) for s in (scaled, new)]
        seams = []
        for st in fitted.stretches if fitted else []:
            if st.change:
                k = abs(st.change)
                like = [conform.cosine(chroma[b], chroma[b + k])
                        for b in range(st.first, st.end - k + 1)]  # fmt: skip
                seams.append((like[st.run - st.first], float(np.mean(like))))
        (cut0, end0, off0), (cut1, end1, off1) = measured
        out.append(TempoTrial(name, asked, refused,
                              (len(bar_lines(score)) - 1, len(bar_lines(new)) - 1),
                              (cut0, cut1) if cuts else None, (end0, end1), (off0, off1),
                              seams))  # fmt: skip
    return out


def _seconds_measures(
    score: symusic.Score, cuts: list[float], duration: float, asked: float
) -> tuple[float, float, float]:
    """The worst distance of a cut from the nearest cut marker (ms), the last note's end from
    ``duration`` (s), and the time-weighted mean |tempo / asked - 1| over ``duration``."""
    timed = score.to("second")
    marks = [m.time for m in timed.markers if m.text.startswith("cut")]
    worst = max((min((abs(m - c) for m in marks), default=1e9) * 1000 for c in cuts), default=0)
    end = max(n.end for t in timed.tracks for n in t.notes)
    tempos = sorted(timed.tempos, key=lambda t: t.time)
    edges = [*(min(t.time, duration) for t in tempos), duration]
    off = sum((b - a) * abs(t.qpm / asked - 1)
              for t, a, b in zip(tempos, edges, edges[1:], strict=False))  # fmt: skip
    return float(worst), abs(end - duration), off / duration
