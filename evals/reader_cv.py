"""Cross-validation of the instruction reader over the training phrasings.

    .venv/bin/python evals/reader_cv.py [--folds 4] [--c 10] [--thresholds 0,.3,.4,.5,.6,.7]
        [--out evals/results/reader-cv.png]

The held-out phrasings are the adherence test's; they hold two or three wordings per value, so
one wording flipping moves an attribute's held-out accuracy by 10 points or more. Choices about
the reader are made here instead: each fold holds out a quarter of every value's training
phrasings and of the training frames, the reader is fitted on the rest exactly as training fits
it (composer.train.instruct.fit_reader), and it reads 1,000 instructions written from the held-out
quarter. Per regression threshold the table counts, over the stated attributes, the readings that
are right, wrong and missing, and over the unsaid ones the readings made anyway (false). The
chosen threshold is the largest that keeps at least 99.5% of the right readings at threshold 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np

from composer.music.attributes import ATTRIBUTES
from composer.train.instruct import fit_reader
from composer.train.instructions import Phrasebook, phrasebook, random_attributes

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def folds(book: Phrasebook, k: int, rng: np.random.Generator) -> list[tuple[Phrasebook, ...]]:
    """(fit, held out) phrasebooks: each value's phrasings and the frames dealt into ``k`` parts."""

    def deal(items: tuple[str, ...]) -> list[tuple[str, ...]]:
        order = rng.permutation(len(items))
        return [tuple(items[i] for i in order[f::k]) for f in range(k)]

    parts = {key: deal(phrases) for key, phrases in book.phrasings.items()}
    frames = deal(book.frames)

    def merged(fs: list[int]) -> Phrasebook:
        return Phrasebook(
            {key: tuple(p for f in fs for p in dealt[f]) for key, dealt in parts.items()},
            tuple(x for f in fs for x in frames[f]),
        )

    return [(merged([g for g in range(k) if g != f]), merged([f])) for f in range(k)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--c", type=float, default=10.0, help="the regression's inverse penalty")
    ap.add_argument("--instructions", type=int, default=3000, help="per fit, as training uses")
    ap.add_argument("--thresholds", default="0,0.3,0.4,0.5,0.6,0.7")
    ap.add_argument("--out", help="a PNG of right against false readings per threshold")
    args = ap.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]

    # counts[t][attr] = (right, wrong, missing, false)
    counts = {t: {a: np.zeros(4, int) for a in ATTRIBUTES} for t in thresholds}
    book = phrasebook("train")
    for f, (fit, held) in enumerate(folds(book, args.folds, np.random.default_rng(0))):
        reader = fit_reader(fit, np.random.default_rng([0, f]), args.instructions, c=args.c)
        rng = np.random.default_rng([1, f])
        cases = []
        for _ in range(1000):
            stated = random_attributes(rng)
            cases.append((stated, held.write(stated, rng)))
        for t in thresholds:
            at_t = dataclasses.replace(reader, threshold=t)
            for stated, text in cases:
                read = at_t.read(text)[0]
                for a in ATTRIBUTES:
                    want, got = getattr(stated, a), getattr(read, a)
                    if want is not None:
                        counts[t][a][0 if got == want else 2 if got is None else 1] += 1
                    elif got is not None:
                        counts[t][a][3] += 1
        print(f"fold {f + 1}/{args.folds} done", flush=True)

    print(f"\nreader cross-validation: {args.folds} folds of the training phrasings, C = {args.c}")
    print(f"{'threshold':>9s} {'right':>6s} {'wrong':>6s} {'missing':>8s} {'false':>6s}   "
          "right / false per attribute")  # fmt: skip
    totals = {t: sum(counts[t].values()) for t in thresholds}
    for t in thresholds:
        r, w, m, fa = totals[t]
        per = ", ".join(f"{a} {counts[t][a][0]}/{counts[t][a][3]}" for a in ATTRIBUTES)
        print(f"{t:9.2f} {r:6d} {w:6d} {m:8d} {fa:6d}   {per}")
    floor = 0.995 * totals[thresholds[0]][0]
    chosen = max(t for t in thresholds if totals[t][0] >= floor)
    print(f"chosen: {chosen} (the largest threshold keeping >= 99.5% of the right readings)")

    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([totals[t][3] for t in thresholds], [totals[t][0] for t in thresholds], "o-")
        for i, t in enumerate(thresholds):  # labels alternate above and below: points crowd
            ax.annotate(f"{t:g}", (totals[t][3], totals[t][0]), textcoords="offset points",
                        xytext=(4, 6 if i % 2 else -12))  # fmt: skip
        ax.axhline(floor, ls=":", c="grey", label="99.5% of the right readings at 0")
        ax.set_xlabel("unsaid attributes read anyway")
        ax.set_ylabel("stated attributes read right")
        ax.set_title("reader threshold, cross-validated")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
