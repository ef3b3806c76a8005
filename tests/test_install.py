"""composer as a Python user installs it: a wheel, installed into a fresh environment, finds its
shipped model, library, prompts and tokenizers, composes from an unrelated folder, and writes
nothing there but the output asked for (its caches go to the user cache folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_composes_from_another_folder(tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    # Nothing of the checkout's: no PYTHONPATH, no user site, composer's and XDG's settings unset.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSER_", "XDG_"))}
    clean.update(HOME=str(home), HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1")
    clean.pop("PYTHONPATH", None)
    # Built from a copy, so that the build's own folders stay out of the checkout; without build
    # isolation and dependencies, so that nothing is downloaded.
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    shutil.copytree(ROOT / "composer", src / "composer",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(src)],
        check=True, capture_output=True, text=True, timeout=600, env=clean,
    )  # fmt: skip
    (wheel,) = wheels.glob("composer-*.whl")
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        check=True, capture_output=True, text=True, timeout=600, env=clean,
    )  # fmt: skip
    # The dependencies come from the test environment's site-packages (a path, not a site
    # folder: its own .pth files, the editable checkout's among them, are not read).
    site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run(
        [python, "-m", "composer", "compose", "--prompt", "a calm folk tune in G major",
         "--duration", "4", "-o", "out"],
        cwd=work, env=clean, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    where = subprocess.run([python, "-c", "import composer; print(composer.__file__)"],
                           cwd=work, env=clean, capture_output=True, text=True).stdout  # fmt: skip
    assert where.startswith(site), where  # the installed copy, not the checkout
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    assert (work / "out" / "score.mid").exists() and (work / "out" / "score.wav").exists()
    assert (home / ".cache" / "composer" / "music21").is_dir()  # music21's scratch folder
