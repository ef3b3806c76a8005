"""The main job's acceptance figures, measured on clips and requests:

    .venv/bin/python evals/compose_report.py [MEDIA_DIR] [--requests 50] [--adapter auto] [-o DIR]

1. Cuts: on the shared test video, the aspect-ratio clip and a synthetic clip with known cuts,
   the distance from every strong cut to the nearest downbeat or hit accent in score.mid
   (target: at most 50 ms each, median at most 20 ms), and the music's length against the
   video's (target: within 0.25 s).
2. Text requests: varied requests with explicit keys, tempi, meters and instruments; the share
   whose explicit values are met exactly in the MIDI, and the share where music21's key
   analysis agrees with the requested key (target: 90%).
3. The signal describer's arousal and tempo across the shared clips (basketball should rank
   above the static webcam and chaplin clips).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import symusic

from composer.describe import describe_signal
from composer.music.keys import MAJOR_KEYS, MINOR_KEYS
from composer.pipeline import compose
from composer.video import analyze
from composer.video.synthetic import Shot, cut_times, make_clip

ROOT = Path(__file__).resolve().parents[1]
SHOTS = [Shot(3.2), Shot(2.48), Shot(5.04), Shot(1.6), Shot(4.4), Shot(3.28)]
INSTRUMENTS = {"piano": 0, "violin": 40, "cello": 42, "flute": 73, "clarinet": 71,
               "trumpet": 56, "harp": 46, "guitar": 24, "oboe": 68, "strings": 48}  # fmt: skip
MOODS = ["calm", "joyful", "dark and tense", "melancholic", "playful", "triumphant", "dreamy",
         "solemn", "energetic", "mysterious"]  # fmt: skip
STYLES = ["chorale", "folk song", "fiddle tune", "string quartet", "renaissance motet",
          "piano piece", "lullaby", "march"]  # fmt: skip
METERS = ["2/4", "3/4", "4/4", "6/8", "3/8", "5/4"]


def cut_report(media: Path, work: Path, adapter: str | None) -> bool:
    clips = [media / "videos" / "pyscenedetect_testvideo.mp4",
             media / "videos" / "pyscenedetect_issue-195-aspect-ratio.mp4",
             make_clip(work / "synthetic.mp4", SHOTS, size=(640, 360))]  # fmt: skip
    ok = True
    print("1. strong cuts against downbeats and hit accents in score.mid")
    print(f"{'clip':44s} {'cuts':>4s} {'max ms':>7s} {'median':>7s} {'music s':>8s} "
          f"{'video s':>8s}")  # fmt: skip
    for clip in clips:
        if not clip.exists():
            print(f"{clip.name:44s} missing, skipped")
            continue
        res = compose(clip, "", work / clip.stem, force=True, adapter=adapter)
        plan, brief = res.record.plan, res.record.brief
        truth = cut_times(SHOTS) if clip.name == "synthetic.mp4" else [
            e.time for e in brief.events if e.kind == "cut" and e.strength >= 0.5
        ]  # fmt: skip
        midi = symusic.Score(str(res.files["score"])).to("second")
        marks = [m.time for m in midi.markers if m.text.startswith("cut")]
        errors = [min((abs(m - c) for m in marks), default=99.0) * 1000 for c in truth]
        music = max(n.end for t in midi.tracks for n in t.notes)
        worst = max(errors, default=0.0)
        median = float(np.median(errors)) if errors else 0.0
        good = worst <= 50 and median <= 20 and abs(music - plan.duration.value) <= 0.25
        ok &= good
        print(f"{clip.name:44s} {len(truth):4d} {worst:7.1f} {median:7.1f} {music:8.2f} "
              f"{plan.duration.value:8.2f} {'ok' if good else 'FAIL'}")  # fmt: skip
    return ok


def requests(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """``n`` varied requests, each with the explicit values it states."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        minor = rng.random() < 0.5
        key = rng.choice(MINOR_KEYS if minor else MAJOR_KEYS)
        name = key[:-1] + " minor" if minor else key + " major"
        bpm = rng.choice([56, 66, 72, 84, 96, 108, 120, 132, 144])
        meter = rng.choice(METERS)
        inst = rng.sample(sorted(INSTRUMENTS), rng.choice([1, 2, 3]))
        parts = [f"a {rng.choice(MOODS)} {rng.choice(STYLES)}", f"in {name}"]
        facts: dict = {"key": name}
        if rng.random() < 0.8:
            parts.append(f"at {bpm} bpm")
            facts["bpm"] = bpm
        if rng.random() < 0.7:
            parts.append(f"in {meter}")
            facts["meter"] = tuple(int(x) for x in meter.split("/"))
        parts.append("for " + " and ".join(inst))
        facts["programs"] = {INSTRUMENTS[x] for x in inst}
        if i % 5 == 0:
            parts.append("no drums")
        rng.shuffle(parts[1:])
        out.append((", ".join(parts) + f", {rng.choice([10, 15, 20])} seconds", facts))
    return out


def text_report(n: int, work: Path, adapter: str | None) -> bool:
    from composer.evaluate.generation import music21_key
    from composer.evaluate.metrics import Notes
    from composer.music.keys import parse_key

    print(f"\n2. {n} text requests: explicit values in the MIDI, music21's key")
    exact = keys = 0
    for i, (prompt, facts) in enumerate(requests(n)):
        res = compose(None, prompt, work / f"text{i:02d}", force=True, seed=i, adapter=adapter)
        midi = symusic.Score(str(res.files["score"]))
        ok = True
        if "bpm" in facts:
            ok &= all(abs(t.qpm - facts["bpm"]) < 0.01 for t in midi.tempos)
        if "meter" in facts:
            ok &= {(t.numerator, t.denominator) for t in midi.time_signatures} == {facts["meter"]}
        programs = {t.program for t in midi.tracks if not t.is_drum}
        ok &= programs == facts["programs"]
        exact += ok
        notes = [(n.time, n.duration, n.pitch) for t in midi.tracks if not t.is_drum
                 for n in t.notes]  # fmt: skip
        arr = np.asarray(notes, dtype=np.int64)
        tpq = midi.ticks_per_quarter
        found = music21_key(Notes(arr[:, 0], arr[:, 1], arr[:, 2], np.zeros(1, np.int64),
                                  np.zeros(1, np.int64), (), tpq))  # fmt: skip
        want = parse_key(facts["key"])
        keys += found == want
        print(f"  {'ok ' if ok else 'BAD'} key {'ok ' if found == want else 'off'} {prompt}")
    print(f"explicit values met: {exact}/{n}; music21 key agrees: {keys}/{n} "
          f"({keys / n:.0%}, target 90%)")  # fmt: skip
    return exact == n and keys >= 0.9 * n


def describer_report(media: Path) -> None:
    print("\n3. signal describer across the shared clips")
    rows = []
    for v in sorted((media / "videos").glob("*")):
        if v.suffix in {".mp4", ".avi", ".mkv", ".webm"}:
            b = describe_signal(analyze(v))
            rows.append((b.mood.arousal, b.pacing.tempo_min, b.pacing.tempo_max, v.name))
    for arousal, lo, hi, name in sorted(rows, reverse=True):
        print(f"  arousal {arousal:.2f}  tempo {lo:5.1f}-{hi:5.1f}  {name}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("media", nargs="?", type=Path, default=ROOT.parent / "shared" / "media")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("-o", "--outdir", type=Path, help="keep the outputs here")
    ap.add_argument("--adapter", default="auto", help="as compose's --adapter (default: auto)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.outdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        adapter = None if args.adapter == "none" else args.adapter
        ok = cut_report(args.media, work, adapter)
        ok &= text_report(args.requests, work, adapter)
        describer_report(args.media)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
