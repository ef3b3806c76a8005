"""A seeded, bounded fuzz of the entry points that read files a user hands over: MIDI (render,
reference loading, library indexing) and video (analyse), over mutants of the real files in
../shared/media. Every case ends in a result or one ComposerError line, within its time budget,
and no render outgrows the audio limit.

`make test` runs a fixed number of cases (``--fuzz-midi 300 --fuzz-video 50``); a longer run
takes larger numbers, and ``--fuzz-report FILE`` writes the counts.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import SHARED_MEDIA
from fuzz import Report, mutate_midi, mutate_video, run_case

from composer.render import render_midi

RENDER_LIMIT_S = 60.0  # the fuzz renders at most this much audio (COMPOSER_MAX_RENDER_S)
WAV_BYTES_PER_S = 44100 * 4  # 16-bit stereo
MIDI_BUDGET_S = 20.0
VIDEO_BUDGET_S = 30.0
INDEX_BATCH = 25


def sources(folder: str, suffixes: tuple[str, ...]) -> list[Path]:
    root = SHARED_MEDIA / folder
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes)
    if not found:
        pytest.skip(f"shared test media not found: {root} (run beside ../shared)")
    return found


def report_to(request, reports: list[Report]) -> None:
    lines = [r.line() for r in reports]
    for r in reports:
        lines += [f"  refused: {n} x {problem}" for problem, n in r.refused.most_common(12)]
    path = request.config.getoption("--fuzz-report")
    if path:
        with open(path, "a") as f:
            f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


@pytest.fixture(scope="module")
def tok():
    from composer.tokens import ScoreTokenizer

    return ScoreTokenizer.named("remi-roles-v1")


def test_midi_mutants_render_load_and_index_or_refuse(request, tmp_path, monkeypatch, tok):
    from composer.model.prime import load_reference
    from composer.retrieve.index import index

    n = request.config.getoption("--fuzz-midi")
    originals = sources("midi", (".mid", ".midi"))
    monkeypatch.setenv("COMPOSER_MAX_RENDER_S", str(RENDER_LIMIT_S))
    rng = random.Random(0)
    render, load, indexed = Report("render"), Report("reference"), Report("index")
    batch = tmp_path / "batch"
    for case in range(n):
        src = rng.choice(originals)
        seed = rng.randrange(1 << 30)
        mutant = tmp_path / f"m{case % 2}.mid"
        mutant.write_bytes(mutate_midi(src.read_bytes(), seed))
        label = f"{src.relative_to(SHARED_MEDIA)} seed {seed}"
        wav = tmp_path / "out.wav"
        wav.unlink(missing_ok=True)

        def wav_within_limit(audio, wav=wav):
            size = wav.stat().st_size
            if size > (RENDER_LIMIT_S + 3) * WAV_BYTES_PER_S:
                return f"rendered {size} bytes, over the limit"
            return None

        run_case(
            render,
            label,
            MIDI_BUDGET_S,
            lambda m=mutant, w=wav: render_midi(m, w, overwrite=True),
            wav_within_limit,
        )
        run_case(load, label, MIDI_BUDGET_S, lambda m=mutant: load_reference(m, tok))
        batch.mkdir(exist_ok=True)
        (batch / f"{case:05d}.mid").write_bytes(mutant.read_bytes())
        if (case + 1) % INDEX_BATCH == 0 or case == n - 1:
            files = len(list(batch.iterdir()))

            def index_batch(b=batch, files=files):
                r = index([b], tmp_path / "library", rebuild=True)
                assert r.files == files, (r.files, files)
                return r

            run_case(indexed, f"batch ending with case {case}", MIDI_BUDGET_S * INDEX_BATCH,
                     index_batch)  # fmt: skip
            for f in batch.iterdir():
                f.unlink()
    report_to(request, [render, load, indexed])
    for r in (render, load, indexed):
        assert r.failures == [], "\n".join(r.failures[:20])
        assert r.cases == (n if r is not indexed else -(-n // INDEX_BATCH))


def test_video_mutants_analyse_or_refuse(request, tmp_path):
    from composer.video import analyze

    n = request.config.getoption("--fuzz-video")
    # The shorter clips: a mutant costs at most a decoding pass of its original.
    originals = [p for p in sources("videos", (".mp4", ".avi", ".mkv", ".webm"))
                 if p.stat().st_size < 1_500_000]  # fmt: skip
    rng = random.Random(1)
    analysed = Report("analyze")
    for case in range(n):
        src = rng.choice(originals)
        seed = rng.randrange(1 << 30)
        mutant = tmp_path / f"v{case % 2}{src.suffix}"
        mutant.write_bytes(mutate_video(src.read_bytes(), seed))
        run_case(analysed, f"{src.name} seed {seed}", VIDEO_BUDGET_S,
                 lambda m=mutant: analyze(m))  # fmt: skip
    report_to(request, [analysed])
    assert analysed.failures == [], "\n".join(analysed.failures[:20])
    assert analysed.cases == n
