"""Find the General MIDI soundfont to render with: named by the user, or found, never downloaded."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ComposerError
from composer.paths import SOUNDFONTS, user_soundfonts

ENV_VAR = "COMPOSER_SOUNDFONT"
DEBIAN_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL_FIX = (
    "install one with `sudo apt-get install fluid-soundfont-gm`, "
    f"or pass --soundfont FILE.sf2 (or set ${ENV_VAR})"
)


@dataclass(frozen=True)
class SoundfontCandidate:
    """One place a soundfont may come from; ``path`` is None where that source names nothing."""

    source: str
    path: Path | None
    exists: bool


def _candidate(source: str, path: str | Path | None) -> SoundfontCandidate:
    if path is None:
        return SoundfontCandidate(source, None, False)
    path = Path(path).expanduser()
    return SoundfontCandidate(source, path, path.is_file())


def _pretty_midi_soundfont() -> Path | None:
    # Locate the package without importing it (the import is slow and not needed here).
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"


def soundfont_candidates(explicit: str | Path | None = None) -> list[SoundfontCandidate]:
    """Every place a soundfont is looked for, in the order they are tried."""
    folders = []
    for source, folder in (("your soundfonts folder", user_soundfonts()),
                           ("composer's soundfonts folder", SOUNDFONTS)):  # fmt: skip
        fonts = sorted(folder.glob("*.sf[23]")) if folder.is_dir() else []
        folders += [_candidate(f"{source} ({folder})", p) for p in fonts] or [
            _candidate(f"{source} ({folder})", None)
        ]
    return [
        _candidate("--soundfont", explicit),
        _candidate(f"${ENV_VAR}", os.environ.get(ENV_VAR) or None),
        *folders,
        _candidate("Debian fluid-soundfont-gm", DEBIAN_SOUNDFONT),
        _candidate("pretty_midi's TimGM6mb", _pretty_midi_soundfont()),
    ]


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The first soundfont that exists. A path the user named that is missing is an error."""
    candidates = soundfont_candidates(explicit)
    for c in candidates[:2]:
        # A path the user typed must not be silently replaced by another soundfont.
        if c.path is not None and not c.exists:
            raise ComposerError(c.path, f"soundfont not found (named by {c.source})")
    for c in candidates:
        if c.exists:
            return c.path  # type: ignore[return-value]
    raise ComposerError(None, f"no General MIDI soundfont found: {INSTALL_FIX}")
