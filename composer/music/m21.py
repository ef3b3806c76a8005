"""music21, set up once before its first parse: its pickles of parsed files go to composer's
cache folder, not into the installed package or the current folder."""

from __future__ import annotations

import functools
from types import ModuleType


@functools.cache
def music21_converter() -> ModuleType:
    """music21's ``converter`` module, its scratch folder set to composer's cache.

    Set in memory only: music21's environment.set() and UserSettings would write ~/.music21rc.
    A cache folder that cannot be made leaves music21's own default (the temporary folder).
    """
    from music21 import converter, environment

    from composer.paths import cache_dir

    try:
        environment.Environment()["directoryScratch"] = str(cache_dir("music21"))
    except OSError:
        pass
    return converter
