"""``python -m composer``: the same command as ``composer``."""

import sys

from composer.cli import main

sys.exit(main())
