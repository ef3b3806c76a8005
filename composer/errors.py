"""The one exception type users see: a message naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class ComposerError(Exception):
    """A problem with the user's input or environment, shown as one line by the CLI."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
