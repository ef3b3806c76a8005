"""Train the style classifier that ``composer eval styles`` uses; write it to
``composer/data/style-classifier.json``.

    .venv/bin/python evals/style_classifier/train.py [--cache DIR] [--bars 8]

Data: 8-bar excerpts (up to 4 per piece) of the corpus' held-out pieces, never the training
split the decoder and its adapters learnt from. Features: composer.evaluate.styles
.excerpt_features (the decoded notes only; the style token is never read). Model: scikit-learn's
multinomial logistic regression on standardised features, balanced class weights (folk has
200 times medieval's pieces). It is fitted on the val split and scored on the test split
(excerpts of unseen pieces: the figure reported), then refitted on both for the saved file.
Styles with held-out pieces of fewer than 2 in either split are left out (piano, other).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, confusion_matrix

from composer.evaluate.styles import (
    StyleClassifier,
    excerpt_features,
    held_out_excerpts,
)
from composer.paths import STYLE_CLASSIFIER
from composer.tokens import ScoreTokenizer
from composer.train.data import TokenCache


def features(tok, excerpts, styles):
    rows = [(s, excerpt_features(tok, ids)) for s, _, ids in excerpts if s in styles]
    return np.stack([f for _, f in rows]), np.array([s for s, _ in rows])


def fit(x: np.ndarray, y: np.ndarray, styles: list[str], seed: int):
    mean, scale = x.mean(0), x.std(0) + 1e-6
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000, random_state=seed)
    lr.fit((x - mean) / scale, y)
    order = [list(lr.classes_).index(s) for s in styles]
    return StyleClassifier(tuple(styles), mean, scale, lr.coef_[order], lr.intercept_[order])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, default=STYLE_CLASSIFIER)
    args = ap.parse_args()
    tok = ScoreTokenizer.named("remi-roles-v1")
    cache = TokenCache.load(args.cache, tok)
    val = held_out_excerpts(cache, "val", args.bars, seed=args.seed)
    test = held_out_excerpts(cache, "test", args.bars, seed=args.seed + 1)
    pieces = {split: Counter(s for s, _ in {(s, i) for s, i, _ in ex})
              for split, ex in (("val", val), ("test", test))}  # fmt: skip
    styles = [s for s in tok.spec.styles if min(pieces["val"][s], pieces["test"][s]) >= 2]
    xv, yv = features(tok, val, styles)
    xt, yt = features(tok, test, styles)
    clf = fit(xv, yv, styles, args.seed)
    pred = np.array(clf.predict(xt))
    acc = float(np.mean(pred == yt))
    bal = float(balanced_accuracy_score(yt, pred))
    per = {s: round(float(np.mean(pred[yt == s] == s)), 3) for s in styles}
    lines = [
        f"style classifier: fitted on {len(yv)} val excerpts, scored on {len(yt)} test "
        f"excerpts ({args.bars} bars; pieces val {dict(pieces['val'])}, test "
        f"{dict(pieces['test'])})",
        f"test accuracy {acc:.3f}, balanced accuracy {bal:.3f}",
        "per style recall: " + ", ".join(f"{s} {v:.2f}" for s, v in per.items()),
        "confusion (rows true, columns predicted, order " + ", ".join(styles) + "):",
        str(confusion_matrix(yt, pred, labels=styles)),
    ]
    print("\n".join(lines))
    final = fit(np.concatenate([xv, xt]), np.concatenate([yv, yt]), styles, args.seed)
    info = {
        "summary": f"test accuracy {acc:.2f}, balanced {bal:.2f} ({len(styles)} styles, "
        f"fitted on val, scored on test; saved refitted on both)",
        "per_style_test_recall": per,
        "excerpts": {"val": len(yv), "test": len(yt)},
        "bars": args.bars,
        "command": "python evals/style_classifier/train.py",
    }
    StyleClassifier(final.styles, final.mean, final.scale, final.coef, final.intercept,
                    info).save(args.out)  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
