"""LoRA style adapters on the tiny decoder: train, save, merge, cache, choose by style, errors."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil

import numpy as np
import pytest
import symusic
import torch

from composer.cli import main
from composer.errors import ComposerError
from composer.model import adapters as ad
from composer.model import load_checkpoint
from composer.model.checkpoint import cached_checkpoint, forget_checkpoints, save_checkpoint
from composer.model.generate import generate, uniform_controls
from composer.paths import DEFAULT_MODEL
from composer.pipeline import ComposeRecord
from composer.train.adapter import AdapterTrainConfig, train_adapter
from composer.train.card import write_adapter_card
from composer.train.trainer import TrainConfig
from composer.types import GenerationRequest, StyleContrast

TPQ = 480


def write_midi_folder(folder, n: int = 24) -> None:
    """``n`` two-voice 8-bar pieces in 3/4 as MIDI files: a user's own folder."""
    folder.mkdir(parents=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        s = symusic.Score(TPQ)
        s.time_signatures.append(symusic.TimeSignature(0, 3, 4))
        mel, bass = symusic.Track("melody", 0, False), symusic.Track("bass", 32, False)
        for b in range(8):
            for beat in range(3):
                t = (b * 3 + beat) * TPQ
                mel.notes.append(symusic.Note(t, TPQ, 62 + int(rng.choice([0, 2, 4, 5, 7])), 80))
            bass.notes.append(symusic.Note(b * 3 * TPQ, 3 * TPQ, 38, 80))
        s.tracks.extend([mel, bass])
        s.dump_midi(str(folder / f"tune{i:02d}.mid"))


@pytest.fixture(scope="module")
def base(tiny_checkpoint, tmp_path_factory):
    """A copy of the tiny checkpoint (adapters are written inside it) and its trained adapter."""
    root = tmp_path_factory.mktemp("adapters")
    model = root / "tiny"
    shutil.copytree(tiny_checkpoint, model)
    write_midi_folder(root / "tunes")
    # 16 x 256 tokens per step is more than the folder's training tokens: one step per epoch,
    # and the two epochs asked for (over the config's one) give two steps.
    config = AdapterTrainConfig(
        train=TrainConfig(seq_len=256, batch_size=16, lr=1e-2, warmup_steps=1, epochs=1.0)
    )
    result = train_adapter(
        "folk", model=model, data=[root / "tunes"], style="folk", cache=root / "cache",
        config=config, epochs=2.0,
    )  # fmt: skip
    return model, result


def test_adapter_trained_and_saved_small(base, tmp_path):
    model, result = base
    assert result.steps == 2
    assert result.path == model / "adapters" / "folk"
    files = {f.name for f in result.path.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "adapter.json"} <= files
    assert 0 < result.size_bytes <= ad.MAX_ADAPTER_BYTES
    meta = ad.read_meta(result.path)
    assert meta["config"]["rank"] == ad.AdapterConfig().rank
    assert meta["info"]["steps"] == 2 and meta["info"]["style"] == "folk"
    card = (result.path / "README.md").read_text()
    assert card.startswith("# tiny adapter: folk") and "More Information Needed" not in card
    assert "composer generate --style folk --adapter folk" in card and "--epochs 2`" in card
    # A time limit fits the schedule, so the card's remake command carries it too.
    timed = tmp_path / "adapters" / "timed"
    shutil.copytree(result.path, timed)
    meta["info"]["train_config"]["max_minutes"] = 40.0
    (timed / "adapter.json").write_text(json.dumps(meta))
    write_adapter_card(timed, "timed")
    assert "--epochs 2 --minutes 40`" in (timed / "README.md").read_text()
    assert ad.list_adapters(model) == ["folk"]
    assert ad.style_adapter(model, "folk") == "folk" and ad.style_adapter(model, "piano") is None


def test_merged_logits_equal_unmerged_and_differ_from_base(base):
    from peft import PeftModel

    model, result = base
    ckpt = load_checkpoint(model)
    merged = ad.merge_adapter(ckpt, result.path)
    peft_model = PeftModel.from_pretrained(copy.deepcopy(ckpt.model), result.path).eval()
    ids = torch.tensor([ckpt.tokenizer.header("folk", (2, "major")) + [ckpt.tokenizer.bar_id]])
    with torch.no_grad():
        plain = ckpt.model(input_ids=ids).logits
        unmerged = peft_model(input_ids=ids).logits
        fused = merged.model(input_ids=ids).logits
    assert (fused - plain).abs().max() > 1e-3  # the adapter changed the model
    torch.testing.assert_close(fused, unmerged, atol=1e-4, rtol=1e-4)
    # The base checkpoint is left as it was.
    torch.testing.assert_close(ckpt.model(input_ids=ids).logits, plain)
    # Every LoRA target is trained: the expert tensors as well as attention.
    names = [n for n, p in peft_model.named_parameters() if "lora_B" in n and p.abs().sum() > 0]
    assert any("experts" in n for n in names) and any("q_proj" in n for n in names)


def test_cache_merges_once_per_style(base):
    model, _ = base
    forget_checkpoints()
    first = cached_checkpoint(model, "folk")
    assert cached_checkpoint(model, "folk") is first
    assert cached_checkpoint(model) is not first
    assert first.info["adapter"] == "folk"


def test_style_chooses_adapter_on_generate(base, tmp_path):
    model, _ = base
    forget_checkpoints()
    req = GenerationRequest(
        style="folk", key=(2, "major"), meter=(3, 4), controls=uniform_controls(2), candidates=1
    )
    generate(req, output=tmp_path / "a.mid", model=model)  # "auto" by default
    assert (str(model.resolve()), "folk") in ad._MERGED
    forget_checkpoints()
    generate(req, output=tmp_path / "b.mid", model=model, adapter=None)  # the base alone
    assert not ad._MERGED
    # A style with no adapter of its name decodes with the base under "auto".
    generate(dataclasses.replace(req, style="chorale"), output=tmp_path / "c.mid", model=model)
    assert not ad._MERGED
    assert symusic.Score(str(tmp_path / "a.mid")).note_num() > 0


def test_corrupt_adapter_is_one_clear_line(base, capsys):
    model, result = base
    broken = model / "adapters" / "broken"
    shutil.copytree(result.path, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ComposerError, match="corrupt or mismatched adapter weights"):
        ad.merge_adapter(load_checkpoint(model), broken)
    forget_checkpoints()
    code = main(["generate", "--model", str(model), "--adapter", "broken", "--bars", "2",
                 "-o", str(model.parent / "x.mid")])  # fmt: skip
    # transformers draws its own weight-loading bar on stderr; the error is one line.
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert code == 1 and len(errors) == 1
    assert errors[0].startswith("composer: error: ") and "adapters/broken" in errors[0]
    assert not (model.parent / "x.mid").exists()
    shutil.rmtree(broken)


def test_adapter_refuses_other_base_weights(base, tmp_path):
    model, result = base
    ckpt = load_checkpoint(model)
    meta = json.loads((result.path / "adapter.json").read_text())
    assert meta["base_weights"] == ckpt.weights_digest and len(ckpt.weights_digest) == 16
    # Another training run of the same spec and tokenizer: same shapes, other weights.
    with torch.no_grad():
        for p in ckpt.model.parameters():
            p.add_(0.01)
    other = save_checkpoint(ckpt.model, ckpt.spec, tmp_path / "other", info=ckpt.info)
    shutil.copytree(result.path, ad.adapter_path(other, "folk"))
    with pytest.raises(ComposerError, match="other base weights than this checkpoint's"):
        ad.merge_adapter(load_checkpoint(other), ad.adapter_path(other, "folk"))
    # An adapter saved before the digest existed records none, and still merges.
    old = ad.adapter_path(other, "folk") / "adapter.json"
    old.write_text(json.dumps({k: v for k, v in meta.items() if k != "base_weights"}))
    assert ad.merge_adapter(load_checkpoint(other), old.parent).info["adapter"] == "folk"


def test_missing_adapter_and_bad_names(base, capsys):
    model, _ = base
    with pytest.raises(ComposerError, match="no such adapter"):
        ad.merge_adapter(load_checkpoint(model), ad.adapter_path(model, "nothing"))
    with pytest.raises(ComposerError, match="bad adapter name"):
        ad.adapter_path(model, "../escape")
    # Not a style and no --data: nothing to train on.
    code = main(["train", "--adapter", "mood", "--model", str(model)])
    assert code == 1 and "give --data" in capsys.readouterr().err
    # An existing adapter is not replaced without --force.
    code = main(["train", "--adapter", "folk", "--model", str(model)])
    assert code == 1 and "--force" in capsys.readouterr().err


def test_shipped_adapters_fit_the_limit():
    names = ad.list_adapters(DEFAULT_MODEL)
    if not names:
        pytest.skip(f"no adapters trained beside {DEFAULT_MODEL}")
    for name in names:
        folder = ad.adapter_path(DEFAULT_MODEL, name)
        assert sum(f.stat().st_size for f in folder.iterdir()) <= ad.MAX_ADAPTER_BYTES
        info = ad.read_meta(folder)["info"]
        # Each shipped adapter lowers its validation loss below the base's (the instruct
        # adapter records one figure, on windows paired with their instructions).
        val = info["history"][-1]["val_loss"] if "history" in info else info["val_loss"]
        assert val < info["base_val_loss"], name


def test_adapter_records_its_styles_nearest_neighbour(base, tmp_path):
    model, result = base
    info = ad.read_meta(result.path)["info"]
    saved = info[ad.CONTRAST]
    nll = saved["val_nll_by_style"]
    tok = load_checkpoint(model).tokenizer
    assert set(nll) == set(tok.spec.styles)
    # The neighbour is the other style under which the adapter's windows are likeliest.
    assert saved["against"] == min((s for s in nll if s != "folk"), key=nll.__getitem__)
    assert saved["scale"] == 1.0 and not saved["given"]  # off unless asked for
    assert ad.style_contrast(model, "folk") is None
    assert ad.style_contrast(model, "folk", 2.0) == StyleContrast(saved["against"], 2.0)
    assert ad.style_contrast(model, None) is None
    with pytest.raises(ComposerError, match="style adapter"):
        ad.style_contrast(model, None, 2.0)


def test_guidance_only_sets_the_scale_and_leaves_the_weights(base, tmp_path):
    from composer.train.adapter import set_guidance

    model, result = base
    copy_ = tmp_path / "tiny"
    shutil.copytree(model, copy_)
    folder = copy_ / "adapters" / "folk"
    weights = (folder / "adapter_model.safetensors").read_bytes()
    tunes = model.parent / "tunes"
    contrast = set_guidance("folk", 2.0, model=copy_, data=[tunes], style="folk",
                            cache=model.parent / "cache")  # fmt: skip
    assert contrast.scale == 2.0 and contrast.against != "folk"
    assert ad.style_contrast(copy_, "folk") == contrast
    assert (folder / "adapter_model.safetensors").read_bytes() == weights
    card = (folder / "README.md").read_text()
    assert f"guided away from {contrast.against} (the style nearest" in card
    assert "--guidance 2`" in card  # the Remake line
    # compose merges the planned style's adapter by default and decodes with its guidance.
    out = tmp_path / "song"
    prompt = "a folk song in D major, 6 seconds"
    assert main(["compose", "--prompt", prompt, "--model", str(copy_), "-o", str(out)]) == 0
    record = ComposeRecord.load(out / "plan.json")
    assert record.adapter == "folk" and record.guidance == 2.0
    assert record.guided_against == contrast.against


def test_guidance_against_a_named_style(base, tmp_path, capsys):
    model, _ = base
    copy_ = tmp_path / "tiny"
    shutil.copytree(model, copy_)
    root = model.parent
    train = ["train", "--adapter", "folk", "--model", str(copy_), "--data", str(root / "tunes"),
             "--style", "folk", "--cache", str(root / "cache"), "--guidance-only"]  # fmt: skip
    assert main([*train, "--guidance", "1.5", "--against", "medieval"]) == 0
    saved = ad.read_meta(copy_ / "adapters" / "folk")["info"][ad.CONTRAST]
    assert (saved["against"], saved["scale"], saved["given"]) == ("medieval", 1.5, True)
    card = (copy_ / "adapters" / "folk" / "README.md").read_text()
    assert "--guidance 1.5 --against medieval`" in card and "named with --against" in card
    capsys.readouterr()
    for bad in ("folk", "polka"):  # its own style, and no style at all
        assert main([*train, "--guidance", "2", "--against", bad]) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("composer: error:") and repr(bad) in err
    assert ad.read_meta(copy_ / "adapters" / "folk")["info"][ad.CONTRAST] == saved


def test_style_contrast_logits_push_away_from_the_neighbour(tiny_checkpoint):
    from composer.model.decode import _Forward

    ckpt = load_checkpoint(tiny_checkpoint)
    tok, model = ckpt.tokenizer, ckpt.model
    folk, fiddle = tok.vocab["Style_folk"], tok.vocab["Style_fiddle"]
    key = tok.header("folk", (0, "major"))[2]
    restart, step = [[tok.bos_id, fiddle, key], [tok.bos_id, fiddle, key]], torch.tensor([[7], [9]])
    other = [[tok.bos_id, folk, key]] * 2
    for lean in (True, False):
        logp = {}
        for name, rows in (("fiddle", restart), ("folk", other)):
            logp[name] = torch.log_softmax(_Forward(model, 2, 64, lean, None)(step, rows), -1)
        out = _Forward(model, 2, 64, lean, None, contrast=(folk, 2.0))(step, restart)
        expected = logp["folk"] + 2.0 * (logp["fiddle"] - logp["folk"])
        torch.testing.assert_close(out, expected, atol=2e-3, rtol=1e-3)


def test_contrast_changes_the_music_and_stays_seeded(tiny_checkpoint):
    from composer.model.decode import sample

    ckpt = load_checkpoint(tiny_checkpoint)
    req = GenerationRequest(style="fiddle", key=(2, "major"), meter=(3, 4),
                            controls=uniform_controls(2, [1, 2]), candidates=2, seed=4)  # fmt: skip
    plain = sample(ckpt, req)[0]
    guided = dataclasses.replace(req, contrast=StyleContrast("folk", 3.0))
    rows = sample(ckpt, guided)[0]
    assert all(row.count(ckpt.tokenizer.bar_id) == 2 for row in rows)  # still a valid score
    assert rows != plain and sample(ckpt, guided)[0] == rows
    # Scale 1, or a contrast against the requested style itself, is no guidance at all.
    for off in (StyleContrast("folk", 1.0), StyleContrast("fiddle", 3.0)):
        assert sample(ckpt, dataclasses.replace(req, contrast=off))[0] == plain


def test_style_guidance_without_an_adapter_is_one_line(tiny_checkpoint, tmp_path, capsys):
    code = main(["generate", "--model", str(tiny_checkpoint), "--adapter", "none", "--bars", "2",
                 "--style-guidance", "2", "-o", str(tmp_path / "x.mid")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("composer: error:") and "adapter" in err[-1]
    assert not (tmp_path / "x.mid").exists()


def test_style_guidance_with_an_instruction_is_one_line(tiny_checkpoint, tmp_path, capsys):
    code = main(["generate", "--model", str(tiny_checkpoint), "--adapter", "instruct",
                 "--instruction", "a calm waltz", "--bars", "2", "--style-guidance", "2",
                 "-o", str(tmp_path / "x.mid")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "style guidance" in err[-1] and "instruction" in err[-1]
    assert not (tmp_path / "x.mid").exists()
