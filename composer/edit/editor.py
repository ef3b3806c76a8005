"""edit(): change part of a score and keep the rest note for note, as a new version.

The target is composer's output folder, edited in place (each earlier version stays in
versions/, composer.edit.history), or any MIDI file: then a new output folder holds the edit
and the file itself is never touched. Everything is checked before anything is written: the
options, the file, the bars and tracks named, and the edit itself (a transposition that would
leave MIDI's range is refused, not clipped).

Exact edits are composer.edit.transforms, and composer.edit.conform for a tempo on a scored
video (its bars fitted again to the cuts, and plan.json with them). Regenerating bars (``bars``,
``tracks`` or a ``prompt`` without an exact edit) needs the span decoder, composer.edit.span.
The outputs beside score.mid are then made again from the new score: score.wav, score.musicxml,
timeline.png (from the plan in plan.json) and video.mp4 (while the video plan.json names is
still on disk).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import symusic

from composer.edit import conform, history, transforms
from composer.edit.history import CANDIDATES, HISTORY, SCORE, EditRequest, Span, Version
from composer.edit.transforms import MUTED, Bars, TrackRef, bar_span, parse_bars, track_index
from composer.errors import ComposerError
from composer.music.instruments import name as instrument_name
from composer.music.instruments import playable
from composer.music.midi import bar_lines, read_midi, read_score
from composer.music.roles import CHORDS_TRACK, MELODY
from composer.outputs import Outputs, check_folder_target
from composer.progress import ProgressFn, no_progress
from composer.types import Plan

# What a folder may hold beside score.mid, made again after each edit.
DERIVED = ("score.wav", "score.musicxml", "timeline.png", "video.mp4")


@dataclass
class EditResult:
    folder: Path
    version: int  # the version current afterwards (a preview leaves it as it was)
    files: list[Path]  # what was written
    notes: list[str] = field(default_factory=list)  # what the user should know about it


@dataclass
class _Context:
    """What plan.json says about the folder: its plan (for the timeline and the decoder), the
    video it scores, or why it could not be read."""

    plan: Plan | None = None
    video: Path | None = None
    problem: str | None = None
    record: dict | None = None  # plan.json as read, to write again around a new plan


def edit(
    target: str | Path,
    *,
    bars: str | Bars | None = None,
    tracks: str | Sequence[TrackRef] | None = None,
    prompt: str | None = None,
    instrument: Mapping[TrackRef, int | str] | None = None,
    transpose: int | None = None,
    tempo: float | None = None,
    key: str | None = None,
    mute: TrackRef | Sequence[TrackRef] | None = None,
    delete: TrackRef | Sequence[TrackRef] | None = None,
    seed: int = 0,
    n: int = 1,
    preview: bool = False,
    out: str | Path | None = None,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> EditResult:
    """Edit ``target`` (composer's output folder, in place; or a MIDI file, into ``out``,
    by default ``<stem>-edit/`` beside it, replaced only with ``force``).

    ``bars`` ("9-12", 1-based, inclusive) and ``tracks`` (indices, role words or names) scope a
    ``transpose`` or a regeneration; ``instrument`` ({track: "flute" or 73}), ``mute`` and
    ``delete`` name their tracks; ``tempo`` (the first tempo, in bpm; on a scored video, bars
    are dropped or repeated between its cuts, composer.edit.conform) and ``key`` ("E minor")
    change the whole score. ``preview`` writes the ``n`` candidates to candidates/K/ for
    :func:`accept` and leaves score.mid as it is.
    """
    request = EditRequest(
        bars=bars if bars is None or isinstance(bars, str) else f"{bars[0]}-{bars[-1]}",
        tracks=tracks.split(",") if isinstance(tracks, str) else _names(tracks),
        prompt=prompt, transpose=transpose, tempo=tempo, key=key, mute=_names(mute),
        delete=_names(delete), seed=seed, n=n,
        instrument={str(k): v for k, v in instrument.items()} if instrument else None,
    )  # fmt: skip
    exact = _check_options(request, preview)
    path = Path(target)
    folder = _folder(path, out) if path.is_dir() else None
    score = load_score(folder / SCORE if folder else path)
    dest = None if folder else _destination(path, out, force)
    context = _context(folder) if folder else _Context()
    progress("edit", 0, 2)
    try:
        made, method, span, notes, plan = _make(score, request, exact, context, progress)
    except ComposerError as e:  # a problem with the score's bars or tracks: name the file
        if e.path:
            raise
        raise ComposerError(folder / SCORE if folder else path, e.problem) from None
    progress("edit", 1, 2)
    plan_json = None
    if plan is not None:  # the bars moved (a tempo fitted to the cuts): plan.json follows
        record = context.record | {"plan": plan.to_dict()}
        plan_json = (json.dumps(record, indent=2) + "\n").encode()
        context = dataclasses.replace(context, plan=plan)

    def work(place: Path, fresh: bool) -> EditResult:
        first = history.load(place) is None
        names = ["score.wav", "score.musicxml"] if fresh else [
            n for n in DERIVED if (place / n).exists()
        ]  # fmt: skip
        files = [place / HISTORY]
        with Outputs(force=True) as outputs:
            if preview:
                if fresh:  # the new folder's own outputs, of the score as it is
                    files += _refresh(place, score, names, context, outputs, notes, progress)
                candidates = [s.dumps_midi() for s in made]
                places = history.propose(place, candidates, request, seed=seed, span=span,
                                         method=method, plan=plan_json,
                                         outputs=outputs)  # fmt: skip
                for k, tmp in enumerate(places, 1):
                    _render(tmp / SCORE, tmp / "score.wav", progress)
                    files += [place / CANDIDATES / str(k) / n for n in (SCORE, "score.wav")]
                number = history.load(place).current if not first else 0
            else:
                version = history.record(place, made[0].dumps_midi(), request, seed=seed,
                                         span=span, method=method, plan=plan_json,
                                         outputs=outputs)  # fmt: skip
                number = version.number
                files += [place / SCORE, history.version_folder(place, number)]
                files += [place / history.PLAN] if plan_json else []
                files += [history.version_folder(place, 0)] if first else []
                files += _refresh(place, made[0], names, context, outputs, notes, progress)
        progress("edit", 2, 2)
        return EditResult(place, number, files, notes)

    if folder is not None:
        return work(folder, fresh=False)
    return _into_new_folder(path, dest, force, work)


def undo(target: str | Path, *, progress: ProgressFn = no_progress) -> EditResult:
    """Put back the version the current one was made from, and the outputs beside it."""
    return _step(target, history.undo, _kept, progress)


def redo(target: str | Path, *, progress: ProgressFn = no_progress) -> EditResult:
    """Put back the version undone last (the latest made from the current one)."""
    return _step(target, history.redo, _kept, progress)


def accept(target: str | Path, k: int, *, progress: ProgressFn = no_progress) -> EditResult:
    """Make candidate ``k`` of the last preview the new version, as if it had been the edit."""
    return _step(
        target, lambda folder, outputs: history.accept(folder, k, outputs=outputs),
        lambda folder, v: Path(folder) / CANDIDATES / str(k) / SCORE, progress,
    )  # fmt: skip


def load_score(path: str | Path) -> symusic.Score:
    """The score of a MIDI file with its muted tracks, which symusic's reader drops (it keeps
    no track without notes or lyrics); they are put back where the file has them, counting one
    score track per sounding MIDI track, as composer writes them."""
    path = Path(path)
    score = read_score(path)
    if MUTED.encode() not in path.read_bytes():
        return score
    place = 0
    for chunk in read_midi(path).tracks:
        name = next((m.name for m in chunk if m.type == "track_name"), "")
        if any(m.type == "lyrics" or (m.type == "note_on" and m.velocity) for m in chunk):
            place += 1
        elif name.endswith(MUTED):
            program = next((m.program for m in chunk if m.type == "program_change"), 0)
            drum = any(getattr(m, "channel", None) == 9 for m in chunk)
            score.tracks.insert(min(place, len(score.tracks)), symusic.Track(name, program, drum))
            place += 1
    return score


# --- checks ----------------------------------------------------------------------------------


def _names(refs: TrackRef | Sequence[TrackRef] | None) -> list[str] | None:
    if refs is None:
        return None
    return [str(r) for r in ([refs] if isinstance(refs, int | str) else refs)]


def _check_options(r: EditRequest, preview: bool) -> bool:
    """Refuse options that do not go together; True for an exact edit."""
    given = [flag for flag, value in (("--instrument", r.instrument), ("--transpose", r.transpose),
             ("--tempo", r.tempo), ("--key", r.key), ("--mute", r.mute), ("--delete", r.delete))
             if value is not None]  # fmt: skip
    scoped = [f for f in given if f != "--transpose"]  # each names its own tracks, or all
    if r.prompt is not None and given:
        raise ComposerError(None, f"--prompt regenerates bars and does not go with "
                                  f"{', '.join(given)}: make them two edits")  # fmt: skip
    if r.key is not None and r.transpose is not None:
        raise ComposerError(None, "--key and --transpose both move every pitch: give one")
    if (r.bars is not None or r.tracks is not None) and scoped:
        raise ComposerError(None, f"--bars and --tracks choose what --transpose or a regeneration "
                                  f"changes; {', '.join(scoped)} name their own scope")  # fmt: skip
    if not given and r.bars is None and r.tracks is None and r.prompt is None:
        raise ComposerError(None, "nothing to edit: give --bars or --prompt to regenerate, or an "
                                  "exact edit (--instrument, --transpose, --tempo, --key, --mute, "
                                  "--delete)")  # fmt: skip
    if r.n < 1:
        raise ComposerError(None, f"-n {r.n}: give at least one candidate")
    if given and r.n != 1:
        raise ComposerError(None, "an exact edit has one result: -n is for regenerated bars")
    if not given and r.n > 1 and not preview:
        raise ComposerError(None, f"-n {r.n} makes candidates to choose from: add --preview, "
                                  "then --accept K")  # fmt: skip
    return bool(given)


def _folder(path: Path, out: str | Path | None) -> Path:
    if out is not None:
        raise ComposerError(out, "-o is for editing a MIDI file: a folder is edited in place "
                                 "(its earlier versions stay in versions/)")  # fmt: skip
    if not (path / SCORE).is_file():
        raise ComposerError(path, "holds no score.mid: give composer's folder or a MIDI file")
    history.check_unchanged(path)
    return path


def _destination(path: Path, out: str | Path | None, force: bool) -> Path:
    dest = Path(out) if out is not None else path.with_name(f"{path.stem}-edit")
    check_folder_target(dest, force)
    return dest


def folder_plan(folder: str | Path) -> Plan | None:
    """The plan in ``folder``'s plan.json, or None where there is none it can read."""
    return _context(Path(folder)).plan


def _context(folder: Path) -> _Context:
    path = folder / "plan.json"
    if not path.is_file():
        return _Context()
    try:
        data = json.loads(path.read_text())
        plan = Plan.from_dict(data["plan"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # Only the timeline needs the plan: the edit goes ahead and says what it left.
        return _Context(problem=f"timeline.png left as it was: {path} cannot be read ({e})")
    return _Context(plan, Path(data["video"]) if data.get("video") else None, record=data)


# --- the edit --------------------------------------------------------------------------------


def _make(
    score: symusic.Score, r: EditRequest, exact: bool, context: _Context, progress: ProgressFn
) -> tuple[list[symusic.Score], str, Span, list[str], Plan | None]:
    """The edited score (or the decoder's candidates), the method, the span, notes, and the
    plan where the edit moved its bars."""
    bars = parse_bars(r.bars) if r.bars is not None else None
    bar_span(score, bars)  # refuses bars outside the score
    ids = sorted({track_index(score, t) for t in r.tracks}) if r.tracks else None
    if exact:
        edited, touched, notes, method, plan = _exact(score, r, bars, ids, context, progress)
        return [edited], method, Span(list(bars) if bars else None, touched), notes, plan
    regenerate = _decoder()
    chosen = ids or [
        i for i, t in enumerate(score.tracks) if not t.is_drum and t.name != CHORDS_TRACK
    ]
    lines = bar_lines(score)
    first, last = bars or (1, len(lines) - 1)
    # The span decoder counts bars from 0, the end excluded, against every bar line.
    made = regenerate(score, (first - 1, last), chosen, r.prompt, r.seed, r.n,
                      plan=context.plan, progress=progress, starts=lines)  # fmt: skip
    method = f"{regenerate.__module__}.{regenerate.__name__}"
    return list(made), method, Span([first, last], chosen), [], None


def _decoder() -> Callable:
    try:
        from composer.edit.span import regenerate
    except ModuleNotFoundError as e:
        if e.name != "composer.edit.span":
            raise
        raise ComposerError(
            None, "regenerating bars needs the span decoder, which this version lacks"
        ) from None
    return regenerate


def _exact(
    score: symusic.Score, r: EditRequest, bars: Bars | None, ids: list[int] | None,
    context: _Context, progress: ProgressFn,
) -> tuple[symusic.Score, list[int] | None, list[str], str, Plan | None]:  # fmt: skip
    """The exact edits applied in turn, the method, and the plan where bars moved; every
    track named is found in the score as it was, so renaming one (a new instrument) cannot
    change what the next edit names. A key change into the minor also has the decoder write
    the accompaniment again where moving the degrees left a minor dominant
    (composer.edit.span.reharmonise). A tempo on a scored video drops or repeats bars between
    its cuts so they keep their beats (composer.edit.conform)."""
    programs = {track_index(score, t): transforms.program_of(w)
                for t, w in (r.instrument or {}).items()}  # fmt: skip
    muted = {track_index(score, t) for t in r.mute or []}
    deleted = {track_index(score, t) for t in r.delete or []}
    out, notes, plan = score, [], None
    for i, program in programs.items():
        out = transforms.set_instrument(out, i, program)
        notes += _range_note(out.tracks[i], program)
    if r.transpose is not None:
        out = transforms.transpose(out, r.transpose, ids, bars)
    method = "exact"
    if r.key is not None:
        mode = transforms.score_key(out)[1]
        moved = transforms.change_key(out, r.key)
        if transforms.score_key(moved)[1] != mode:
            from composer.edit.span import reharmonise, track_roles

            tune = next((i for i, rs in track_roles(out).items() if rs == (MELODY,)), None)
            moved, line = reharmonise(moved, r.seed, context.plan, progress, melody=tune)
            notes.append(line)
            method = f"exact, then {reharmonise.__module__}.{reharmonise.__name__}"
        out = moved
    if r.tempo is not None:
        scored = context.video is not None and context.plan is not None
        if scored and conform.fits(out, context.plan):
            fitted = conform.conform(out, context.plan, r.tempo)
            out, plan = fitted.score, fitted.plan
            notes.append(fitted.note)
            method += f", then {conform.__name__}.conform"
        else:
            out = transforms.set_tempo(out, r.tempo)
            if scored:
                notes.append("the tempo changed, so the video's cuts no longer fall on the bar "
                             "lines they were fitted to: the score's bars no longer match its "
                             "plan.json (compose again to fit them)")  # fmt: skip
    for i in sorted(muted):
        out = transforms.mute(out, i)
    for i in sorted(deleted, reverse=True):
        out = transforms.delete(out, i)
    if out == score:
        raise ComposerError(None, "the edit leaves the score as it is: nothing to record")
    if not any(len(t.notes) for t in out.tracks):
        raise ComposerError(None, "the edit would leave no notes to play")
    everything = r.key is not None or r.tempo is not None or (r.transpose is not None and not ids)
    touched = None if everything else sorted(set(programs) | muted | deleted | set(ids or ()))
    return out, touched, notes, method, plan


def _range_note(track: symusic.Track, program: int) -> list[str]:
    lo, hi = playable(program)
    outside = sum(not lo <= n.pitch <= hi for n in track.notes)
    if not outside:
        return []
    return [f"{track.name}: {outside} of {len(track.notes)} notes lie outside the "
            f"{instrument_name(program)}'s range ({lo}-{hi}); --transpose with --tracks moves "
            "them"]  # fmt: skip


# --- writing ---------------------------------------------------------------------------------


def _into_new_folder(
    source: Path, dest: Path, force: bool, work: Callable[[Path, bool], EditResult]
) -> EditResult:
    """``work`` done in a new output folder that starts with ``source``'s exact bytes as its
    score (version 0), and is put in place only when all of it succeeded."""
    with Outputs(force=force) as outer:
        place = outer.folder(dest)
        shutil.copyfile(source, place / SCORE)  # inside a temporary folder: renamed as a whole
        result = work(place, True)
    files = [dest / p.relative_to(place) for p in result.files]
    return EditResult(dest, result.version, files, result.notes)


def _step(
    target: str | Path,
    step: Callable[..., Version],
    source: Callable[[Path, Version], Path],
    progress: ProgressFn,
) -> EditResult:
    """Undo, redo or accept: ``step`` changes the version, then the outputs follow it."""
    folder = Path(target)
    if not folder.is_dir():
        raise ComposerError(folder, "is not a folder: undo, redo and accept work on a folder "
                                    "composer edited")  # fmt: skip
    names = [n for n in DERIVED if (folder / n).exists()]
    notes: list[str] = []
    with Outputs(force=True) as outputs:
        version = step(folder, outputs=outputs)
        score = load_score(source(folder, version))
        # The version's (or candidate's) own plan.json: the one in place changes at the commit.
        kept = source(folder, version).parent
        context = _context(kept if (kept / "plan.json").is_file() else folder)
        files = [folder / SCORE, folder / HISTORY]
        files += _refresh(folder, score, names, context, outputs, notes, progress)
    return EditResult(folder, version.number, files, notes)


def _kept(folder: Path, version: Version) -> Path:
    return history.version_folder(folder, version.number) / SCORE


def _render(midi: Path, wav: Path, progress: ProgressFn) -> None:
    from composer.render import render_midi

    render_midi(midi, wav, overwrite=True, progress=progress)


def _refresh(
    place: Path, score: symusic.Score, names: list[str], context: _Context, outputs: Outputs,
    notes: list[str], progress: ProgressFn,
) -> list[Path]:  # fmt: skip
    """Make ``names`` (of DERIVED) again from ``score`` through ``outputs``; return the paths
    written, adding to ``notes`` what was left as it was, and why."""
    from composer.music.notation import write_musicxml
    from composer.plan.figure import plot_plan
    from composer.render import mux

    written = []
    with tempfile.TemporaryDirectory() as scratch:
        # The render reads a MIDI file, and the score.mid in place is still a temporary name.
        midi = Path(scratch) / SCORE
        midi.write_bytes(score.dumps_midi())
        wav = midi.with_suffix(".wav")  # the video's audio, where the folder keeps no WAV
        if "score.wav" in names:
            wav = outputs.file(place / "score.wav")
            written.append(place / "score.wav")
        if "score.wav" in names or "video.mp4" in names:
            _render(midi, wav, progress)
        if "video.mp4" in names:
            if context.video is not None and context.video.is_file():
                mux(context.video, wav, outputs.file(place / "video.mp4"), overwrite=True)
                written.append(place / "video.mp4")
            else:
                video = context.video or "unnamed in plan.json"
                notes.append(f"video.mp4 left as it was, with the earlier music: the video it "
                             f"scores ({video}) is not found")  # fmt: skip
    if "score.musicxml" in names:
        write_musicxml(score, outputs.file(place / "score.musicxml"))
        written.append(place / "score.musicxml")
    if "timeline.png" in names:
        if context.plan is not None:
            plot_plan(context.plan, None, score, outputs.file(place / "timeline.png"))
            written.append(place / "timeline.png")
        else:
            notes.append(context.problem or "timeline.png left as it was: there is no plan.json")
    return written
