"""Stage 9, edit: change part of a finished score and keep the rest note for note.

``edit`` (composer.edit.editor) makes each change a new version of the folder, which ``undo``
and ``redo`` move between (composer.edit.history); exact edits (instrument, transposition,
tempo, key, mute, delete) are composer.edit.transforms.
"""

from composer.edit.editor import EditResult, accept, edit, redo, undo

__all__ = ["EditResult", "accept", "edit", "redo", "undo"]
