"""Every file and folder composer writes goes through here, so nothing a user has is lost.

- Each output is written under a temporary name unique to the run, beside its target, and
  renamed onto the target only when the whole command has succeeded; a failure (or Ctrl-C,
  SIGTERM, SIGHUP) removes the temporary names and leaves the targets as they were.
- An existing target is replaced only with ``force``, and only when it is composer's own: a
  file whose content is of the type the command writes (a WAV for a WAV), a folder holding
  composer's marker file and nothing but what the marker lists. Anything else is refused with
  its name; composer never deletes what it did not write.
- The current folder, its ancestors, the home folder and the file-system root are never an
  output folder, and no output is written through a symbolic link.
- Whether the target's folder is writable is found out before the work starts (the temporary
  name is made then).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from composer.errors import ComposerError

MARKER = ".composer-output.json"  # in every output folder: what composer wrote there

# The process umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def make_readable(path: str | Path) -> None:
    """Give ``path`` the mode a plain open() would (mkstemp and mkdtemp make 0600 and 0700)."""
    Path(path).chmod((0o777 if Path(path).is_dir() else 0o666) & ~_UMASK)


# What a file of each kind starts with: --force replaces a file only if it is of its kind.
def _riff(form: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _json_text(head: bytes) -> bool:
    return head.lstrip()[:1] in (b"{", b"[")


def _xml(head: bytes) -> bool:
    return head.lstrip().startswith((b"<?xml", b"<score-", b"<!DOCTYPE score"))


_ISO_MEDIA = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
KINDS: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    "wav": ("a WAV file", _riff(b"WAVE")),
    "midi": ("a MIDI file", lambda head: head[:4] == b"MThd"),
    "json": ("a JSON file", _json_text),
    "png": ("a PNG image", lambda head: head[:8] == b"\x89PNG\r\n\x1a\n"),
    "jpeg": ("a JPEG image", lambda head: head[:3] == b"\xff\xd8\xff"),
    "musicxml": ("a MusicXML file", _xml),
    "video": (
        "a video file",
        lambda head: head[4:8] in _ISO_MEDIA or head[:4] in (b"\x1aE\xdf\xa3", b"RIFF"),
    ),
}
_SUFFIX_KINDS = {
    ".wav": "wav", ".mid": "midi", ".midi": "midi", ".json": "json", ".png": "png",
    ".jpg": "jpeg", ".jpeg": "jpeg", ".musicxml": "musicxml", ".xml": "musicxml",
    ".mp4": "video", ".m4v": "video", ".mov": "video", ".mkv": "video",
}  # fmt: skip


def kind_of(path: str | Path) -> str | None:
    """The kind of file composer writes under ``path``'s suffix, if any."""
    return _SUFFIX_KINDS.get(Path(path).suffix.lower())


def check_file_target(target: Path, force: bool, kind: str | None) -> None:
    """Refuse ``target`` unless composer may write it: absent, or (with ``force``) a file of
    ``kind`` that is not reached through a link. Kind None: a store of composer's own."""
    if target.is_symlink():
        raise ComposerError(target, "is a symbolic link: give the path of a real file")
    if not target.exists():
        return
    if target.is_dir():
        raise ComposerError(target, "is a folder, not a file")
    if not force:
        raise ComposerError(target, "already exists (pass --force to replace it)")
    if kind is None or target.stat().st_size == 0:  # a store of composer's own, or nothing
        return
    what, looks_like = KINDS[kind]
    try:
        with open(target, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise ComposerError(target, f"cannot be read to check it ({e.strerror})") from None
    if not looks_like(head):
        raise ComposerError(
            target,
            f"is not {what}, so --force does not replace it (move it away or choose another name)",
        )


def check_folder_target(target: Path, force: bool) -> None:
    """Refuse ``target`` as an output folder unless composer may replace it (see module)."""
    resolved = target.resolve()
    here = Path.cwd().resolve()
    if target.is_symlink():
        raise ComposerError(target, "is a symbolic link: give the path of a real folder")
    if here == resolved or here.is_relative_to(resolved):
        where = "the current folder" if here == resolved else "a folder above the current one"
        raise ComposerError(target, f"is {where}: name a new folder for the outputs")
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        raise ComposerError(target, "is the home folder or the root: name a new folder")
    if not target.exists():
        return
    if not target.is_dir():
        raise ComposerError(target, "is a file, not a folder")
    if not force and any(target.iterdir()):
        raise ComposerError(target, "already exists (pass --force to replace it)")
    _own_entries(target)  # raises unless every entry is composer's (an empty folder has none)


def _own_entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` that composer wrote there, with the marker; raise if the folder
    holds anything else, naming it (an empty folder has nothing to lose)."""
    entries = sorted(folder.iterdir())
    if not entries:
        return []
    marker = folder / MARKER
    try:
        listed = set(json.loads(marker.read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ComposerError(
            folder,
            f"was not written by composer (it has no {MARKER}); --force replaces only "
            "composer's own output folders",
        ) from None
    others = [e.name for e in entries if e.name not in listed and e != marker]
    others += [
        f"{e.name}/{o}" for e in entries if e.name in listed and e.is_dir() and not e.is_symlink()
        for o in _foreign(e)
    ]  # fmt: skip
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise ComposerError(
            folder,
            f"holds files composer did not write ({shown}); --force replaces only composer's "
            "own output folders: move them away or choose another folder",
        )
    return entries


def _foreign(folder: Path) -> list[str]:
    try:
        _own_entries(folder)
    except ComposerError:
        return [e.name for e in folder.iterdir()][:1] or ["?"]
    return []


def _remove_own(folder: Path) -> None:
    """Delete a folder of composer's output: the listed entries, the marker, then the folder.
    Nothing else is deleted (an entry that appeared meanwhile keeps the folder)."""
    for entry in _own_entries(folder):
        if entry.is_dir() and not entry.is_symlink():
            _remove_own(entry)
        else:
            entry.unlink()
    folder.rmdir()


def write_marker(folder: Path, names: list[str] | None = None) -> None:
    """Mark ``folder`` as composer's output, listing what it holds (all it holds by default)."""
    names = names if names is not None else [e.name for e in folder.iterdir()]
    (folder / MARKER).write_text(marker_text(names))


def marker_text(names: list[str]) -> str:
    """The marker of a folder holding ``names``, for writing it through :class:`Outputs` where
    the folder is already in place."""
    from composer import __version__

    files = sorted(n for n in set(names) if n != MARKER)
    return json.dumps({"composer": __version__, "files": files}) + "\n"


@dataclass
class _Pending:
    target: Path
    tmp: Path
    force: bool
    kind: str | None  # of a file (None: a store of composer's own)
    folder: bool = False


@dataclass
class Outputs:
    """The outputs of one command, written under temporary names and renamed together.

    Use as a context manager: ``file()`` and ``folder()`` check a target and return the
    temporary path to write; on leaving without an error every target is put in place, on an
    error (or an interrupt) every temporary path is removed.
    """

    force: bool = False
    _pending: list[_Pending] = field(default_factory=list)
    _made: list[Path] = field(default_factory=list)  # parent folders this run created

    def file(self, target: str | Path, kind: str | None = None) -> Path:
        """A temporary file path for ``target`` (of ``kind``, by default from its suffix)."""
        target = Path(target)
        kind = kind or kind_of(target)
        check_file_target(target, self.force, kind)
        self._parent(target)
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent
            )
        except OSError as e:
            raise _unwritable(target, e) from None
        os.close(fd)
        self._pending.append(_Pending(target, Path(tmp), self.force, kind))
        return Path(tmp)

    def folder(self, target: str | Path) -> Path:
        """A temporary folder for ``target``, whose contents replace it as a whole."""
        target = Path(target)
        check_folder_target(target, self.force)
        self._parent(target)
        try:
            tmp = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            )
        except OSError as e:
            raise _unwritable(target, e) from None
        self._pending.append(_Pending(target, tmp, self.force, None, folder=True))
        return tmp

    def _parent(self, target: Path) -> None:
        missing = [p for p in reversed(target.parents) if not p.exists()]
        for p in missing:
            try:
                p.mkdir()
            except FileExistsError:  # made meanwhile by another run: not this run's to remove
                continue
            except OSError as e:
                raise _unwritable(target, e) from None
            self._made.append(p)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            try:
                self.commit()
                return
            except BaseException:
                self.discard()
                raise
        named = self._as_target(value) if isinstance(value, ComposerError) else None
        self.discard()
        if named is not None:
            raise named from None

    def _as_target(self, error: ComposerError) -> ComposerError | None:
        """``error`` naming the output it concerns rather than that output's temporary name
        (which is gone by the time the user reads it)."""
        if error.path is None:
            return None
        where = Path(error.path)
        for p in self._pending:
            if where == p.tmp or p.tmp in where.parents:
                return ComposerError(p.target / where.relative_to(p.tmp), error.problem)
        return None

    def commit(self) -> None:
        """Put every output in place (each target checked again: something may have appeared
        there while the work ran)."""
        for p in self._pending:
            if p.folder:
                check_folder_target(p.target, p.force)
            else:
                check_file_target(p.target, p.force, p.kind)
        for p in self._pending:
            make_readable(p.tmp)
            if p.folder:
                write_marker(p.tmp)
                _replace_folder(p.tmp, p.target)
            else:
                os.replace(p.tmp, p.target)
        self._pending.clear()
        self._made.clear()

    def discard(self) -> None:
        """Remove every temporary path, and the parent folders this run made if still empty."""
        for p in self._pending:
            if p.folder:
                shutil.rmtree(p.tmp, ignore_errors=True)
            else:
                p.tmp.unlink(missing_ok=True)
        self._pending.clear()
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made.clear()


def _replace_folder(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target``; an old target (composer's own, checked) is first moved
    aside to a unique name and deleted entry by entry once the new one is in place."""
    if not target.exists():
        tmp.rename(target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    target.rename(aside)  # onto the empty folder just made: the name stays this run's
    tmp.rename(target)
    with contextlib.suppress(ComposerError, OSError):
        _remove_own(aside)


def _unwritable(target: Path, e: OSError) -> ComposerError:
    folder = target.parent if target.parent != Path("") else Path(".")
    return ComposerError(folder, f"cannot write {target.name} here ({e.strerror or e})")


@contextlib.contextmanager
def atomic_path(
    target: str | Path, *, overwrite: bool = True, kind: str | None = None
) -> Iterator[Path]:
    """One output file: yield its temporary path, rename it onto ``target`` on success.

    The temporary name keeps the target's suffix so tools that sniff it (ffmpeg, matplotlib)
    pick the right format. ``overwrite=False`` refuses an existing target; ``True`` replaces
    one of ``kind`` (by default the kind its suffix names; none: composer's own stores).
    """
    with Outputs(force=overwrite) as out:
        yield out.file(target, kind)


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
