"""Damaged copies of the shipped model: each must be refused fast, small and in one line.

    .venv/bin/python evals/corrupt_models.py [MODEL_DIR]

Copies the model (without its adapters) into a temporary folder once per case, damages the copy,
runs ``composer generate --model COPY --bars 2 -o OUT`` in a subprocess and prints: case, exit
code, seconds, the subprocess's peak RSS, whether it passed (exit 1, under 10 s and 1 GB, one
error line on stderr, no output written) and its stderr. "intact" is the undamaged copy and
"no such folder" fails before any checkpoint file is read: together they show the fixed cost of
starting the CLI, which dominates every row.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from composer.paths import DEFAULT_MODEL

COMPOSER = Path(sys.executable).parent / "composer"
MAX_SECONDS, MAX_MB = 10.0, 1024


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    for i in rng.sample(range(len(data)), 2000):
        data[i] ^= 1 + rng.randrange(255)
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cut_config(path: Path) -> None:
    cfg = json.loads(path.read_text())
    path.write_text(json.dumps({k: cfg[k] for k in ("model_type", "vocab_size")}))


CASES = {
    "intact": lambda m: None,
    "no such folder (startup floor)": shutil.rmtree,
    "config.json cut to 2 fields": lambda m: _cut_config(m / "config.json"),
    "config.json hidden_size 512": lambda m: _edit_json(
        m / "config.json", lambda c: c.update(hidden_size=512)
    ),
    "config.json not JSON": lambda m: (m / "config.json").write_text('{"hidden_size": 2'),
    "config.json missing": lambda m: (m / "config.json").unlink(),
    "spec hidden 65536, 256 layers": lambda m: _edit_json(
        m / "composer.json", lambda c: c["spec"].update(hidden=65536, layers=256)
    ),
    "spec 10^9 layers": lambda m: _edit_json(
        m / "composer.json", lambda c: c["spec"].update(layers=10**9)
    ),
    "composer.json not JSON": lambda m: (m / "composer.json").write_text('{"spec": {'),
    "2000 flipped bytes": lambda m: _flip(m / "model.safetensors"),
    "truncated weights": lambda m: _truncate(m / "model.safetensors"),
    "truncated, no digest": lambda m: (
        _edit_json(m / "composer.json", lambda c: c.pop("weights_sha256")),
        _truncate(m / "model.safetensors"),
    ),
}


def run_case(model: Path, damage, work: Path) -> tuple[int, float, float, list[str], bool]:
    """(exit code, seconds, peak RSS MB, stderr lines, output written) of one damaged copy."""
    copy = Path(shutil.copytree(model, work / "model", ignore=shutil.ignore_patterns("adapters")))
    damage(copy)
    out = work / "out.mid"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(COMPOSER), "generate", "--model", str(copy), "--bars", "2", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = proc.stderr.read()  # one line or a few: the pipe never fills before the exit
    # wait4: this child's own peak RSS (RUSAGE_CHILDREN keeps the maximum over all children)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line.replace(str(work) + "/", "") for line in err.strip().splitlines()]
    return proc.returncode, seconds, usage.ru_maxrss / 1024, lines, out.exists()


def main() -> int:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL
    print(f"{'case':31s} {'exit':>4s} {'s':>5s} {'MB':>5s} {'ok':3s} message")
    failed = 0
    for name, damage in CASES.items():
        with tempfile.TemporaryDirectory() as work:
            code, seconds, mb, lines, written = run_case(model, damage, Path(work))
        # A checkpoint without a digest also warns that none was recorded: not an error line.
        errors = [line for line in lines if "no weights digest recorded" not in line]
        if name == "intact":
            ok, message = code == 0 and written, "wrote out.mid"
        else:
            ok = (code == 1 and seconds < MAX_SECONDS and mb < MAX_MB and len(errors) == 1
                  and not written)  # fmt: skip
            message = " | ".join(lines)
        failed += not ok
        print(f"{name:31s} {code:4d} {seconds:5.1f} {mb:5.0f} {'yes' if ok else 'NO':3s} {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
