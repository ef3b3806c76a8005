"""``composer demo``: the pipeline's stages that exist so far, on a clip composer makes itself.

The clip has known cuts and fades. It is analysed (stage 1), a short score is laid over it so that
bar lines and cymbal hits fall on the detected cuts, and the score is rendered and muxed into the
clip (stage 7). Until the music model and planner land, the score's notes come from a fixed chord
progression; its timing comes from the analysis.
"""

from __future__ import annotations

from pathlib import Path

import mido

from composer.io import atomic_path
from composer.progress import ProgressFn, no_progress
from composer.render import mux, render_midi
from composer.types import VideoAnalysis
from composer.video import analyze
from composer.video.synthetic import Shot, make_clip
from composer.video.timeline import plot_timeline

# Shots of 2 s multiples: at 120 bpm in 4/4 every cut can land on a bar line.
DEMO_SHOTS = [Shot(4.0), Shot(2.0), Shot(4.0, fade_out=1.0), Shot(2.0, fade_in=1.0), Shot(4.0)]
_BPM = 120
_TPB = 480
# D minor: i VI iv V, as (root MIDI note, chord tones above the root).
_CHORDS = [(50, (0, 3, 7)), (46, (0, 4, 7)), (43, (0, 3, 7)), (45, (0, 4, 7))]


def run_demo(outdir: str | Path, progress: ProgressFn = no_progress) -> dict[str, Path]:
    """Make the clip, analyse it, score it, render and mux; returns the output paths by name."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "clip": out / "clip.mp4",
        "analysis": out / "analysis.json",
        "timeline": out / "timeline.png",
        "score": out / "score.mid",
        "audio": out / "score.wav",
        "video": out / "video.mp4",
    }
    make_clip(paths["clip"], DEMO_SHOTS, size=(640, 360), audio=True)
    analysis = analyze(paths["clip"], progress=progress)
    analysis.save(paths["analysis"])
    plot_timeline(analysis, paths["timeline"])
    write_cue_score(analysis, paths["score"])
    render_midi(paths["score"], paths["audio"], overwrite=True, progress=progress)
    mux(paths["clip"], paths["audio"], paths["video"], overwrite=True)
    return paths


def write_cue_score(analysis: VideoAnalysis, path: Path) -> Path:
    """A score as long as the video: a chord per bar, a crash cymbal on each detected cut."""
    sec_per_bar = 4 * 60 / _BPM
    bars = max(1, round(analysis.duration / sec_per_bar))
    bar_ticks = 4 * _TPB
    strings, bass, drums = (mido.MidiTrack() for _ in range(3))
    for track, name, channel, program in (
        (strings, "strings", 0, 48),
        (bass, "bass", 1, 42),
        (drums, "percussion", 9, 0),
    ):
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        if channel != 9:
            track.append(mido.Message("program_change", channel=channel, program=program))
    events: dict[int, list[tuple[int, mido.Message]]] = {0: [], 1: [], 9: []}
    for bar in range(bars):
        root, tones = _CHORDS[bar % len(_CHORDS)]
        start, end = bar * bar_ticks, (bar + 1) * bar_ticks - 10
        for pitch in (root + 12 + t for t in tones):
            events[0] += [
                (start, mido.Message("note_on", channel=0, note=pitch, velocity=70)),
                (end, mido.Message("note_off", channel=0, note=pitch)),
            ]
        for beat in range(4):
            b0 = start + beat * _TPB
            events[1] += [
                (b0, mido.Message("note_on", channel=1, note=root - 12, velocity=80)),
                (b0 + _TPB - 20, mido.Message("note_off", channel=1, note=root - 12)),
            ]
    for cut in analysis.cuts:
        tick = round(cut.time / sec_per_bar * bar_ticks)
        if tick < bars * bar_ticks:
            vel = 60 + round(60 * cut.strength)
            events[9] += [
                (tick, mido.Message("note_on", channel=9, note=49, velocity=vel)),
                (tick + _TPB, mido.Message("note_off", channel=9, note=49)),
            ]
    for track, channel in ((strings, 0), (bass, 1), (drums, 9)):
        now = 0
        for tick, msg in sorted(events[channel], key=lambda e: (e[0], e[1].type == "note_on")):
            track.append(msg.copy(time=tick - now))
            now = tick
    meta = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(_BPM), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            mido.MetaMessage("key_signature", key="Dm", time=0),
        ]
    )
    midi = mido.MidiFile(type=1, ticks_per_beat=_TPB, tracks=[meta, strings, bass, drums])
    with atomic_path(path) as tmp:
        midi.save(tmp)
    return path
