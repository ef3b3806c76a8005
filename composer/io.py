"""Atomic output: write to a temporary name beside the target, then rename.

A failure part-way leaves nothing behind, and an existing file is only replaced whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from composer.errors import ComposerError

# The process umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def make_readable(path: str | Path) -> None:
    """Give ``path`` the mode a plain open() would (libraries that write via mkstemp leave
    0600)."""
    Path(path).chmod(0o666 & ~_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    The temporary name keeps the target's suffix so tools that sniff it (ffmpeg, matplotlib)
    pick the right format.
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise ComposerError(target, "already exists (pass --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600: give the mode a plain open() would
            tmp_path.chmod(0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
