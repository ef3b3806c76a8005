"""timeline.png for a composed score: keyframes, motion, cuts and the piano roll on one axis."""

from __future__ import annotations

from pathlib import Path

import symusic

from composer.music.roles import CHORDS_TRACK
from composer.outputs import atomic_path
from composer.types import Plan, VideoAnalysis

_THUMBS = 8


def plot_plan(
    plan: Plan, analysis: VideoAnalysis | None, score: symusic.Score, path: str | Path
) -> Path:
    """Keyframes above the motion curve and cuts, the score's piano roll below with its bar
    lines, hit points, sections and chord symbols, all against the video's time in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dur = float(plan.duration.value)
    seconds = score.to("second")
    rows = 3 if analysis else 1
    ratios = [1.0, 1.2, 2.4] if analysis else [1.0]
    fig, axes = plt.subplots(rows, 1, figsize=(14, 2.2 * rows + 1), sharex=True,
                             gridspec_kw={"height_ratios": ratios})  # fmt: skip
    axes = list(axes) if rows > 1 else [axes]
    roll = axes[-1]
    if analysis:
        strip, curve = axes[0], axes[1]
        frames = [k for k in analysis.keyframes if k.image is not None][
            :: max(1, len(analysis.keyframes) // _THUMBS)
        ][:_THUMBS]
        for k in frames:
            w = dur / (_THUMBS + 1)
            strip.imshow(k.image, extent=(k.time, k.time + w, 0, 1), aspect="auto")
        strip.set_ylim(0, 1)
        strip.set_yticks([])
        strip.set_title(
            f"{Path(analysis.path).name}: {plan.style.value}, {plan.tempo.value:.0f} bpm, "
            f"{len(plan.bars)} bars", loc="left", fontsize=10,
        )  # fmt: skip
        curve.plot(analysis.motion.times, analysis.motion.energy, color="#c44", lw=1)
        curve.set_ylabel("motion")
        for c in analysis.cuts:
            curve.axvline(c.time, color="k" if c.kind == "cut" else "#888", lw=1, ls="--")
    colours = plt.get_cmap("tab10")
    for i, track in enumerate(seconds.tracks):
        for n in track.notes:
            # Louder notes darker: the performed dynamics (accents, swells) show in the roll.
            shade = 0.15 + 0.85 * n.velocity / 127
            roll.broken_barh([(n.time, n.duration)], (n.pitch - 0.4, 0.8),
                             color=colours(i % 10), alpha=shade)  # fmt: skip
    for bar in plan.bars:
        roll.axvline(bar.start, color="#ddd", lw=0.6, zorder=0)
    for h in plan.hit_points:
        roll.axvline(h.score_time, color="k", lw=1.2, ls="--")
        roll.text(h.score_time, roll.get_ylim()[1], f" {h.kind} {h.time:.2f}s", fontsize=7,
                  va="top")  # fmt: skip
    low = roll.get_ylim()[0]
    if plan.form is not None:  # the form: each section's letter and texture where it begins
        for sec in plan.form.sections:
            at = plan.bars[sec.start].start
            roll.axvline(at, color="#36c", lw=1.0, zorder=0)
            roll.text(at, low, f" {sec.label}: {sec.texture}", fontsize=8, color="#36c",
                      va="bottom")  # fmt: skip
    for track in seconds.tracks:  # the chord symbols, where the harmony changes
        if track.name == CHORDS_TRACK:
            for text in track.lyrics:
                roll.text(text.time, low + 2.5, text.text, fontsize=6, color="#555")
    roll.set_ylabel("pitch")
    roll.set_xlabel("seconds")
    roll.set_xlim(0, dur)
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)
