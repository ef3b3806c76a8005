"""The versions of an edited folder: every edit keeps the score it made, so any comes back.

    score.mid            the current version (beside it plan.json, if the folder has one)
    edit_history.json    each version: its number, the version it was made from, the edit
                         request, seed, span, method, the SHA-256 of its score.mid and the time;
                         which version is current; a preview's candidates, if any wait
    versions/NNN/        each version's score.mid (and plan.json)
    candidates/K/        a preview's candidates (score.mid, score.wav), K from 1

The first edit records the folder's score as it was as version 0. Undo goes back to the version
an edit was made from, redo forward to the latest one made from the current version: an edit
after an undo starts a new branch, and the old branch stays in versions/. An edit is refused
when score.mid is no longer what composer last wrote there, so a change made by hand is never
overwritten. Everything is written under temporary names and renamed together
(composer.outputs): pass the ``Outputs`` of a larger change (the refreshed audio beside the
score) to make these writes part of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from composer.errors import ComposerError
from composer.outputs import MARKER, Outputs, marker_text, write_marker
from composer.types import _Json

HISTORY = "edit_history.json"
VERSIONS = "versions"
CANDIDATES = "candidates"
SCORE = "score.mid"
PLAN = "plan.json"


@dataclass(frozen=True)
class EditRequest(_Json):
    """An edit as it was asked for (tracks as the user named them)."""

    bars: str | None = None  # "9-12", 1-based and inclusive
    tracks: list[str] | None = None
    prompt: str | None = None
    instrument: dict[str, int | str] | None = None  # track -> instrument word or program
    transpose: int | None = None
    tempo: float | None = None
    key: str | None = None
    mute: list[str] | None = None
    delete: list[str] | None = None
    seed: int = 0
    n: int = 1


@dataclass(frozen=True)
class Span(_Json):
    """What an edit was allowed to change: bars [first, last] and track indices (None: all)."""

    bars: list[int] | None = None
    tracks: list[int] | None = None


@dataclass(frozen=True)
class Version(_Json):
    number: int
    parent: int | None  # the version it was made from (None: the score before any edit)
    request: EditRequest | None
    seed: int
    span: Span
    method: str  # "original", "exact", or the model method that wrote the bars
    sha256: str  # of its score.mid
    time: str  # UTC, ISO 8601
    files: list[str]  # what versions/NNN holds


@dataclass(frozen=True)
class Preview(_Json):
    """Candidates waiting in candidates/: made from version ``base`` for ``request``."""

    base: int
    request: EditRequest
    seed: int
    span: Span
    method: str
    sha256: list[str]  # of candidates/K/score.mid, K from 1


@dataclass(frozen=True)
class History(_Json):
    versions: list[Version]
    current: int
    preview: Preview | None = None

    def version(self, number: int) -> Version:
        return next(v for v in self.versions if v.number == number)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_folder(folder: str | Path, number: int) -> Path:
    return Path(folder) / VERSIONS / f"{number:03d}"


def load(folder: str | Path) -> History | None:
    """The folder's history, or None before its first edit."""
    path = Path(folder) / HISTORY
    if not path.exists():
        return None
    try:
        history = History.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ComposerError(path, f"cannot be read as composer's edit history ({e})") from None
    if history.current not in {v.number for v in history.versions}:
        raise ComposerError(path, f"names version {history.current} current but lists none")
    return history


def check_unchanged(folder: str | Path, history: History | None = None) -> None:
    """Refuse (one line naming the file) when score.mid is not the current version's bytes."""
    history = history or load(folder)
    if history is None:
        return
    path = Path(folder) / SCORE
    current = history.version(history.current)
    if sha256(_read(path)) != current.sha256:
        raise ComposerError(
            path, f"changed since composer wrote version {current.number} (kept in "
            f"{VERSIONS}/{current.number:03d}/): edit a copy of it, or copy that version back"
        )  # fmt: skip


def record(
    folder: str | Path,
    score_bytes: bytes,
    request: EditRequest,
    *,
    seed: int = 0,
    span: Span = Span(),  # noqa: B008 (frozen: sharing is safe)
    method: str = "exact",
    plan: bytes | None = None,
    outputs: Outputs | None = None,
) -> Version:
    """Make ``score_bytes`` the folder's new current version: score.mid, versions/NNN/ and the
    history (with version 0, the score as it was, on the first edit); ``plan``, a new
    plan.json for it, where the edit moved the bars the plan lays out."""
    folder = Path(folder)
    with _writing(outputs) as out:
        history = _started(folder, out)
        check_unchanged(folder, history)
        return _add(folder, history, score_bytes, request, seed, span, method, out, plan)


def undo(folder: str | Path, *, outputs: Outputs | None = None) -> Version:
    """Put back the version the current one was made from (its exact bytes); return it."""
    folder = Path(folder)
    history = _loaded(folder, "undo")
    parent = history.version(history.current).parent
    if parent is None:
        raise ComposerError(folder, "is at version 0, the score before any edit: nothing to undo")
    with _writing(outputs) as out:
        return _restore(folder, history, parent, out)


def redo(folder: str | Path, *, outputs: Outputs | None = None) -> Version:
    """Put back the latest version made from the current one (its exact bytes); return it."""
    folder = Path(folder)
    history = _loaded(folder, "redo")
    later = [v.number for v in history.versions if v.parent == history.current]
    if not later:
        raise ComposerError(folder, f"has no edit made from version {history.current} to redo")
    with _writing(outputs) as out:
        return _restore(folder, history, later[-1], out)


def propose(
    folder: str | Path,
    candidates: list[bytes],
    request: EditRequest,
    *,
    seed: int = 0,
    span: Span = Span(),  # noqa: B008 (frozen: sharing is safe)
    method: str = "exact",
    plan: bytes | None = None,
    outputs: Outputs | None = None,
) -> list[Path]:
    """Write each candidate as candidates/K/score.mid (replacing an earlier preview's), with
    ``plan`` as its plan.json where given, and note them in the history; score.mid stays as it
    is. Returns the candidates' folders: with ``outputs``, temporary ones until it commits,
    where each candidate's audio goes."""
    folder = Path(folder)
    with _writing(outputs) as out:
        history = _started(folder, out)
        check_unchanged(folder, history)
        root = out.folder(folder / CANDIDATES)
        places = []
        for k, data in enumerate(candidates, 1):
            place = root / str(k)
            place.mkdir()
            (place / SCORE).write_bytes(data)  # inside a temporary folder: renamed as a whole
            if plan is not None:
                (place / PLAN).write_bytes(plan)
            write_marker(place, [SCORE, "score.wav"] + ([PLAN] if plan is not None else []))
            places.append(place)
        shas = [sha256(data) for data in candidates]
        waiting = Preview(history.current, request, seed, span, method, shas)
        _save(folder, dataclasses.replace(history, preview=waiting), out)
    return places


def accept(folder: str | Path, k: int, *, outputs: Outputs | None = None) -> Version:
    """Make candidate ``k`` of the waiting preview the new current version, recorded with the
    preview's request."""
    folder = Path(folder)
    history = _loaded(folder, "accept")
    waiting = history.preview
    if waiting is None:
        raise ComposerError(folder, "has no candidates waiting (make some with --preview)")
    if waiting.base != history.current:
        raise ComposerError(
            folder, f"its candidates were made from version {waiting.base}, but version "
            f"{history.current} is current now: preview again"
        )  # fmt: skip
    if not 1 <= k <= len(waiting.sha256):
        raise ComposerError(folder, f"has candidates 1-{len(waiting.sha256)}, not {k}")
    path = folder / CANDIDATES / str(k) / SCORE
    data = _read(path)
    if sha256(data) != waiting.sha256[k - 1]:
        raise ComposerError(path, "changed since composer wrote it: preview again")
    with _writing(outputs) as out:
        plan = path.parent / PLAN
        return _add(folder, history, data, waiting.request, waiting.seed, waiting.span,
                    waiting.method, out, _read(plan) if plan.is_file() else None)  # fmt: skip


# --- inside ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _writing(outputs: Outputs | None) -> Iterator[Outputs]:
    """``outputs``, or this call's own (committed when it returns)."""
    if outputs is not None:
        yield outputs
    else:
        with Outputs(force=True) as own:
            yield own


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ComposerError(path, "no such file") from None
    except OSError as e:
        raise ComposerError(path, f"cannot be read ({e.strerror})") from None


def _loaded(folder: Path, what: str) -> History:
    history = load(folder)
    if history is None:
        raise ComposerError(folder, f"has no edit history ({HISTORY}): nothing to {what}")
    check_unchanged(folder, history)
    return history


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _keep(
    folder: Path, number: int, score_bytes: bytes, out: Outputs, plan: bytes | None = None
) -> list[str]:
    """versions/NNN/: the score, and its plan.json (``plan``, else a copy of the folder's)."""
    place = out.folder(version_folder(folder, number))
    (place / SCORE).write_bytes(score_bytes)  # inside a temporary folder: renamed as a whole
    if plan is not None:
        (place / PLAN).write_bytes(plan)
        return [SCORE, PLAN]
    if (folder / PLAN).is_file():
        shutil.copyfile(folder / PLAN, place / PLAN)
        return [SCORE, PLAN]
    return [SCORE]


def _started(folder: Path, out: Outputs) -> History:
    """The folder's history; before the first edit, one of version 0, the score as it is."""
    history = load(folder)
    if history is not None:
        return history
    data = _read(folder / SCORE)
    files = _keep(folder, 0, data, out)
    original = Version(0, None, None, 0, Span(), "original", sha256(data), _now(), files)
    return History([original], 0)


def _add(folder: Path, history: History, score_bytes: bytes, request: EditRequest, seed: int,
         span: Span, method: str, out: Outputs, plan: bytes | None = None) -> Version:  # fmt: skip
    number = max(v.number for v in history.versions) + 1
    files = _keep(folder, number, score_bytes, out, plan)
    version = Version(number, history.current, request, seed, span, method,
                      sha256(score_bytes), _now(), files)  # fmt: skip
    out.file(folder / SCORE, "midi").write_bytes(score_bytes)
    if plan is not None:
        out.file(folder / PLAN, "json").write_bytes(plan)
    history = History([*history.versions, version], number, preview=None)
    _save(folder, history, out)
    return version


def _restore(folder: Path, history: History, number: int, out: Outputs) -> Version:
    """Version ``number``'s exact bytes back in score.mid (and its plan.json), made current."""
    version = history.version(number)
    kept = version_folder(folder, number)
    data = _read(kept / SCORE)
    if sha256(data) != version.sha256:
        raise ComposerError(kept / SCORE, "changed since composer wrote it: it cannot be "
                                          "restored as it was")  # fmt: skip
    out.file(folder / SCORE, "midi").write_bytes(data)
    if PLAN in version.files and _read(kept / PLAN) != _read_if(folder / PLAN):
        out.file(folder / PLAN, "json").write_bytes(_read(kept / PLAN))
    _save(folder, dataclasses.replace(history, current=number), out)
    return version


def _read_if(path: Path) -> bytes | None:
    return _read(path) if path.exists() else None


def _save(folder: Path, history: History, out: Outputs) -> None:
    """The history, and the markers that keep versions/ and candidates/ composer's own (so
    that --force may replace the folder as a whole)."""
    out.file(folder / HISTORY, "json").write_text(history.to_json() + "\n")
    numbers = [f"{v.number:03d}" for v in history.versions]
    out.file(folder / VERSIONS / MARKER, "json").write_text(marker_text(numbers))
    top = folder / MARKER
    if top.is_file():  # a folder composer wrote; a new one is marked when it is put in place
        try:
            listed = json.loads(top.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return  # not composer's marker: the folder stays unclaimed
        new = [HISTORY, VERSIONS] + ([CANDIDATES] if history.preview else [])
        if not set(new) <= set(listed):
            out.file(top, "json").write_text(marker_text([*listed, *new]))
