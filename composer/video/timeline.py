"""timeline.png: keyframes, motion and colour curves and scene changes on one time axis."""

from __future__ import annotations

from pathlib import Path

from composer.outputs import atomic_path
from composer.types import VideoAnalysis

_MAX_THUMBS = 10


def plot_timeline(analysis: VideoAnalysis, path: str | Path, *, overwrite: bool = True) -> Path:
    """Draw the analysis as a PNG: keyframe strip on top, curves below, cuts marked with times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import ConnectionPatch

    a = analysis
    dur = max(a.duration, 1e-3)
    fig, (ax_k, ax_c) = plt.subplots(
        2, 1, figsize=(14, 6), gridspec_kw={"height_ratios": [1.1, 2], "hspace": 0.45}
    )
    ax_k.set_title(
        Path(a.path).name + f"  ({a.duration:.2f} s, {a.width}x{a.height}, "
        f"{a.fps:.2f} fps, {len(a.cuts)} scene changes)",
        fontsize=10,
        loc="left",
    )
    # Keyframe strip: thumbnails side by side at their own aspect, each joined by a line to its
    # time on the curves below (at most _MAX_THUMBS, spread evenly over the list).
    shown = [k for k in a.keyframes if k.image is not None]
    if len(shown) > _MAX_THUMBS:
        shown = [shown[round(i * (len(shown) - 1) / (_MAX_THUMBS - 1))] for i in range(_MAX_THUMBS)]
    aspect = (a.width * a.pixel_aspect) / max(a.height, 1)
    x = 0.0
    for k in shown:
        ax_k.imshow(k.image, extent=(x, x + aspect, 0, 1))
        ax_k.text(x + aspect / 2, -0.08, f"{k.time:.1f}s", ha="center", va="top", fontsize=7)
        fig.add_artist(
            ConnectionPatch(
                xyA=(x + aspect / 2, -0.25),
                coordsA=ax_k.transData,
                xyB=(k.time, 1.0),
                coordsB=ax_c.transData,
                color="grey",
                lw=0.6,
                alpha=0.6,
            )
        )
        x += aspect * 1.05
    ax_k.set_xlim(0, max(x, aspect * _MAX_THUMBS * 1.05))
    ax_k.set_ylim(0, 1)
    ax_k.set_aspect("equal")
    ax_k.axis("off")
    ax_c.plot(a.motion.times, a.motion.energy, color="tab:red", lw=1.5, label="motion energy")
    ax_c.plot(a.colour.times, a.colour.brightness, color="tab:orange", lw=1, label="brightness")
    ax_c.plot(
        a.colour.times,
        a.colour.saturation,
        color="tab:green",
        lw=0.8,
        alpha=0.7,
        label="saturation",
    )
    ax_c.plot(
        a.colour.times, a.colour.warmth, color="tab:purple", lw=0.8, alpha=0.7, label="warmth"
    )
    for b in a.beats:
        ax_c.axvline(b, ymin=0, ymax=0.06, color="tab:blue", lw=1)
    ax_c.plot([], [], color="tab:blue", lw=1, label="visual beats")
    for c in a.cuts:
        if c.kind == "cut":
            ax_c.axvline(c.time, color="crimson", lw=1.4)
        else:
            ax_c.axvspan(c.time, c.time + max(c.duration, dur / 400), color="grey", alpha=0.3)
    for c in a.cuts:
        label = f"{c.time:.2f}s" if c.kind == "cut" else f"fade {c.direction} {c.time:.2f}s"
        ax_c.text(
            c.time,
            1.03,
            label,
            rotation=90,
            fontsize=7,
            va="bottom",
            ha="center",
            color="crimson" if c.kind == "cut" else "dimgrey",
        )
    ax_c.set_xlim(0, dur)
    ax_c.set_ylim(0, 1.0)
    ax_c.set_xlabel("time (s)")
    ax_c.set_ylabel("0..1")
    ax_c.legend(loc="upper right", fontsize=7, ncol=5, framealpha=0.8)
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)
