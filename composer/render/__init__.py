"""Stage 7, render: MIDI to audio with fluidsynth, and audio muxed into the video."""

from composer.render.muxer import mux
from composer.render.soundfont import find_soundfont, soundfont_candidates
from composer.render.synth import render_midi

__all__ = ["find_soundfont", "mux", "render_midi", "soundfont_candidates"]
