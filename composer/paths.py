"""Where composer's files are: the data it ships (inside the package, so that an installed wheel
finds it as a checkout does), the user's own folders, and the cache.

Nothing here makes a folder when imported; ``cache_dir`` makes its folder when called.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# Wheels install unzipped, so the package's data is a real folder.
DATA = Path(str(resources.files("composer"))) / "data"
MODELS = DATA / "models"
DEFAULT_MODEL = MODELS / "composer-moe"
DEFAULT_LIBRARY = DATA / "libraries" / "music21"
PROMPTS = DATA / "prompts"
INSTRUCTIONS = PROMPTS / "instructions"
TOKENIZERS = DATA / "tokenizers"
SOUNDFONTS = DATA / "soundfonts"
STYLE_CLASSIFIER = DATA / "style-classifier.json"


def cache_root() -> Path:
    """``$COMPOSER_CACHE`` if set, else the platform's user cache folder (``~/.cache/composer``
    on Linux)."""
    import platformdirs

    return Path(os.environ.get("COMPOSER_CACHE") or platformdirs.user_cache_dir("composer"))


def cache_dir(name: str) -> Path:
    """Folder ``name`` of composer's cache, made when first asked for."""
    folder = cache_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def token_cache() -> Path:
    """The default token cache of music21's corpus (``composer train`` builds it when missing).
    The version names the split: v2 holds out at least 10 val and 10 test pieces of each style
    large enough (composer.music.corpus.assign_splits); a model names the split it was trained
    on."""
    return cache_root() / "data-v2"


def user_data() -> Path:
    """The user's own composer folder (``~/.local/share/composer`` on Linux): soundfonts/, and
    models/ that ``composer train --data`` writes."""
    import platformdirs

    return Path(platformdirs.user_data_dir("composer"))


def user_soundfonts() -> Path:
    return user_data() / "soundfonts"
