"""composer generate end to end on a tiny checkpoint saved to disk: same seed, same bytes; bad
input fails with one line that lists the valid values."""

from __future__ import annotations

import pytest
import symusic

from composer.cli import main


@pytest.fixture(scope="module")
def model_dir(tiny_checkpoint):
    return tiny_checkpoint


def run(model_dir, out, *extra):
    args = ["generate", "--model", str(model_dir), "--style", "folk", "--key", "E minor",
            "--meter", "6/8", "--bars", "3", "--seed", "7", "-n", "2",
            "-o", str(out), *extra]  # fmt: skip
    return main(args)


def test_same_seed_same_bytes(model_dir, tmp_path, capsys):
    assert run(model_dir, tmp_path / "a.mid") == 0
    assert run(model_dir, tmp_path / "b.mid") == 0
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert "wrote" in capsys.readouterr().out
    score = symusic.Score(str(tmp_path / "a.mid"))
    assert {(t.numerator, t.denominator) for t in score.time_signatures} == {(6, 8)}
    assert run(model_dir, tmp_path / "c.mid", "--seed", "8") == 0
    assert (tmp_path / "c.mid").read_bytes() != (tmp_path / "a.mid").read_bytes()


@pytest.mark.parametrize(
    "flag,value,listed",
    [
        ("--style", "jazz", "valid styles: chorale"),
        ("--key", "H major", "valid keys: C major"),
        ("--meter", "11/8", "it writes 1/2, 2/2, 3/2"),
    ],  # fmt: skip
)
def test_unknown_values_list_the_valid_ones(model_dir, tmp_path, capsys, flag, value, listed):
    assert run(model_dir, tmp_path / "x.mid", flag, value) == 1
    err = capsys.readouterr().err.strip()
    assert listed in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.mid").exists()


def test_existing_output_and_broken_checkpoint(model_dir, tmp_path, capsys):
    out = tmp_path / "keep.mid"
    out.write_bytes(b"mine")
    assert run(model_dir, out) == 1
    assert out.read_bytes() == b"mine" and "--force" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\0" * 100)
    assert run(broken, tmp_path / "y.mid") == 1
    err = capsys.readouterr().err.strip()
    assert "does not match the digest" in err and len(err.splitlines()) == 1
