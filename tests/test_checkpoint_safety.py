"""Damaged checkpoints are refused with one line naming the file, before memory is allocated."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from pathlib import Path

import pytest

from composer.cli import main
from composer.errors import ComposerError
from composer.model.checkpoint import load_checkpoint, save_checkpoint
from composer.paths import DEFAULT_MODEL


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def cut_config(ckpt: Path) -> str:
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({k: cfg[k] for k in ("model_type", "vocab_size")}))
    return "config.json"


def config_disagrees(ckpt: Path) -> str:
    _edit_json(ckpt / "config.json", lambda c: c.update(hidden_size=64))
    return "config.json"


def config_not_json(ckpt: Path) -> str:
    (ckpt / "config.json").write_text('{"hidden_size": 3')
    return "config.json"


def config_missing(ckpt: Path) -> str:
    (ckpt / "config.json").unlink()
    return "config.json"


def spec_huge(ckpt: Path) -> str:
    # Within the bounds, so it is built on the meta device and refused by the weights' header.
    _edit_json(ckpt / "composer.json", lambda m: m["spec"].update(hidden=65536, layers=256))
    return "composer.json"


def spec_absurd(ckpt: Path) -> str:
    _edit_json(ckpt / "composer.json", lambda m: m["spec"].update(layers=10**9))
    return "composer.json"


def spec_not_json(ckpt: Path) -> str:
    path = ckpt / "composer.json"
    path.write_bytes(path.read_bytes()[:100])
    return "composer.json"


def flipped_bytes(ckpt: Path) -> str:
    path = ckpt / "model.safetensors"
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    for i in rng.sample(range(len(data)), 2000):
        data[i] ^= 1 + rng.randrange(255)
    path.write_bytes(bytes(data))
    return "model.safetensors"


def truncated(ckpt: Path) -> str:
    path = ckpt / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "model.safetensors"


def truncated_without_digest(ckpt: Path) -> str:
    """A checkpoint saved before digests existed: the header check still refuses it."""
    _edit_json(ckpt / "composer.json", lambda m: m.pop("weights_sha256"))
    return truncated(ckpt)


DAMAGES = [cut_config, config_disagrees, config_not_json, config_missing, spec_huge, spec_absurd,
           spec_not_json, flipped_bytes, truncated, truncated_without_digest]  # fmt: skip


def _copy(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_damaged_checkpoint_is_refused_in_one_line(damage, tiny_checkpoint, tmp_path, capsys):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    name = damage(ckpt)
    with pytest.raises(ComposerError) as e:
        load_checkpoint(ckpt)
    message = str(e.value)
    assert name in message and "\n" not in message
    for internal in ("Traceback", "safetensors_rust", "SafetensorError", "Error(", "transformers"):
        assert internal not in message

    out = tmp_path / "x.mid"
    capsys.readouterr()
    assert main(["generate", "--model", str(ckpt), "--bars", "2", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and name in err
    assert not out.exists()


def test_a_good_checkpoint_records_its_digest_and_loads(tiny_checkpoint):
    meta = json.loads((tiny_checkpoint / "composer.json").read_text())
    full = hashlib.sha256((tiny_checkpoint / "model.safetensors").read_bytes()).hexdigest()
    assert meta["weights_sha256"] == full
    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt.weights_digest == full[:16]


def test_a_checkpoint_saved_before_digests_loads_with_a_warning(tiny_checkpoint, tmp_path, caplog):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    _edit_json(ckpt / "composer.json", lambda m: m.pop("weights_sha256"))
    with caplog.at_level(logging.WARNING, logger="composer"):
        loaded = load_checkpoint(ckpt)
    assert "no weights digest" in caplog.text
    assert loaded.weights_digest == load_checkpoint(tiny_checkpoint).weights_digest


def test_the_shipped_model_loads_with_its_recorded_digest():
    ckpt = load_checkpoint(DEFAULT_MODEL)
    meta = json.loads((DEFAULT_MODEL / "composer.json").read_text())
    assert ckpt.weights_digest == meta["weights_sha256"][:16]


def test_saving_over_a_checkpoint_keeps_what_is_not_the_checkpoints(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    (ckpt / "adapters" / "folk").mkdir(parents=True)
    (ckpt / "adapters" / "folk" / "adapter.json").write_text("{}")
    (ckpt / "notes.txt").write_text("mine")
    (ckpt / "README.md").write_text("a card for the old weights")
    loaded = load_checkpoint(ckpt)
    save_checkpoint(loaded.model, loaded.spec, ckpt, info={"again": True})
    assert (ckpt / "adapters" / "folk" / "adapter.json").read_text() == "{}"
    assert (ckpt / "notes.txt").read_text() == "mine"
    assert not (ckpt / "README.md").exists()
    assert not ckpt.with_name("ckpt.part").exists()
    assert load_checkpoint(ckpt).info == {"again": True}
