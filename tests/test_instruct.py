"""Instruction tuning on the tiny decoder: instructions from measured attributes, the reader,
prefix vectors through both decoding paths, training, loading, the CLI and the evaluation."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from conftest import tiny_decoder
from test_adapters import write_midi_folder

from composer.cli import main
from composer.model.checkpoint import forget_checkpoints
from composer.model.decode import Prefix, sample
from composer.model.generate import uniform_controls
from composer.model.instruct import (
    InstructConfig,
    PrefixEncoder,
    anchored,
    controls_for,
    load_instruct,
)
from composer.model.reader import Cues, Reader
from composer.music.attributes import ATTRIBUTES, CHARACTER, VALUES, Attributes, Thresholds
from composer.train.instruct import fit_reader
from composer.train.instructions import (
    classify,
    measure,
    phrasebook,
    say_some,
)
from composer.types import GenerationRequest


def test_phrasebooks_are_disjoint_and_cover_every_value():
    train, held = phrasebook("train"), phrasebook("heldout")
    for attr in ATTRIBUTES + CHARACTER:
        for value in VALUES[attr]:
            assert train.phrasings[(attr, value)] and held.phrasings[(attr, value)]
            assert not set(train.phrasings[(attr, value)]) & set(held.phrasings[(attr, value)])
    assert not set(train.frames) & set(held.frames)


def test_instruction_states_what_is_asked_in_a_training_frame():
    book, rng = phrasebook("train"), np.random.default_rng(0)
    said = set()
    for _ in range(50):
        attrs = say_some(Attributes(mode="minor", meter="triple", density="dense"), rng)
        assert attrs.stated() and attrs.register is None  # never states what was not measured
        text = book.write(attrs, rng)
        for attr, value in attrs.stated().items():
            assert any(p in text for p in book.phrasings[(attr, value)])
            said.add(attr)
        heads = [f.split("{clauses}")[0] for f in book.frames]
        assert any(text.startswith(h) for h in heads)
    assert said == {"tempo", "mode", "meter", "density"}  # each is sometimes said


def test_measure_reads_mode_meter_density_register(tiny_checkpoint):
    from composer.model import load_checkpoint
    from composer.tokens.tokenizer import PITCH

    tok = load_checkpoint(tiny_checkpoint).tokenizer
    # 2 bars of 3/4 in D minor: 3 quarter notes per bar at pitch 74 (high), 1 note per beat.
    vocab = tok.vocab
    bar = [tok.bar_id, vocab["TimeSig_3/4"], vocab["Intensity_1"]]
    note = [vocab["Program_0"], vocab["Pitch_74"], vocab["Velocity_95"], vocab["Duration_1.0.12"]]
    body = []
    for _ in range(2):
        body += bar
        for beat in range(3):
            body += [vocab[f"Position_{beat * 12}"], *note]
    ids = tok.header("chorale", (2, "minor")) + body
    m = measure(tok, ids)
    assert m.mode == "minor" and m.meter == "triple"
    assert m.notes_per_beat == pytest.approx(1.0)
    assert (tok.kind[np.array(ids)] == PITCH).sum() == 6 and m.mean_pitch == 74
    th = Thresholds(density=(1.2, 1.7), register=(66.0, 71.0), motion=(2.0, 2.6),
                    rhythm=(0.11, 0.2))  # fmt: skip
    a = classify(m, th)
    assert (a.density, a.register, a.tempo) == ("sparse", "high", None)
    assert (m.step, m.dotted, a.motion, a.rhythm) == (0.0, 0.0, "stepwise", "even")
    assert a.feel == "calm"  # a stepwise, even melody


def test_melody_motion_and_rhythm_are_read_from_the_top_line(tiny_checkpoint):
    from composer.model import load_checkpoint
    from composer.train.instructions import melody

    tok = load_checkpoint(tiny_checkpoint).tokenizer
    v = tok.vocab

    def note(role: int, pitch: int) -> list[int]:
        return [v[f"Program_{role}"], v[f"Pitch_{pitch}"], v["Velocity_95"], v["Duration_0.3.12"]]

    # Two bars of 4/4: the melody (role 0) goes dotted-eighth, sixteenth, ... leaping a fifth
    # each time, under a lower note at the same onset; the bass (role 5) plays steady quarters.
    body = []
    for _ in range(2):
        body += [tok.bar_id, v["TimeSig_4/4"], v["Intensity_1"]]
        for beat in range(4):
            body += [v[f"Position_{beat * 12}"], *note(5, 40), *note(0, 60), *note(0, 55)]
            body += [v[f"Position_{beat * 12 + 9}"], *note(0, 67)]
    ids = tok.header("folk", (0, "major")) + body
    times, line = melody(tok, ids)
    assert list(times[:5]) == [0, 9, 12, 21, 24] and times[-1] == 48 + 36 + 9  # bar 2 follows
    assert set(line) == {60, 67}  # the top pitch of role 0 at each onset, never the bass
    m = measure(tok, ids)
    assert m.step == 7.0 and m.dotted == pytest.approx(0.5)  # (9, 3) pairs go long-short
    th = Thresholds(density=(1.2, 1.7), register=(66.0, 71.0), motion=(2.0, 2.6),
                    rhythm=(0.11, 0.2))  # fmt: skip
    a = classify(m, th)
    assert (a.motion, a.rhythm, a.feel) == ("leaping", "dotted", "vigorous")
    # Leaping but even: neither feel is stated.
    assert classify(dataclasses.replace(m, dotted=0.0), th).feel is None


def test_reader_reads_clauses_saves_and_loads(tmp_path):
    reader = fit_reader(phrasebook("train"), np.random.default_rng(0), instructions=200)
    text = "I'd like a piece that is in a minor key, in 6/8 and up-tempo."
    reading, confidence = reader.read(text)
    assert (reading.mode, reading.meter, reading.tempo) == ("minor", "compound", "fast")
    assert reading.register is None and set(confidence) == set(reading.stated())
    assert reader.read("")[0] == Attributes()
    reader.save(tmp_path / "reader.npz")
    assert Reader.load(tmp_path / "reader.npz").read(text) == (reading, confidence)


@pytest.mark.parametrize(
    "clause,said",
    [
        ("at a hundred and forty beats a minute", {"tempo": "fast"}),
        ("around 72 bpm", {"tempo": "slow"}),
        ("at ninety-six beats per minute", {"tempo": "moderate"}),
        ("in 9/8", {"meter": "compound"}),
        ("in 3/8", {"meter": "triple"}),
        ("low in note density", {"density": "sparse"}),
        ("with a high register", {"register": "high"}),
        ("not too fast", {"tempo": "moderate"}),
        ("neither busy nor sparse", {"density": "medium"}),
        ("in no hurry", {"tempo": "slow"}),
        ("a lullaby for the end credits", {"tempo": "slow"}),
        ("a slow waltz in d minor", {"tempo": "slow", "meter": "triple", "mode": "minor"}),
        ("fast or slow, whatever", {}),  # cues that disagree say nothing
        ("for a sunrise over the sea", {}),
    ],
)
def test_cues_read_numbers_levels_and_negations(clause, said):
    assert Cues.load().read(clause) == said


def test_cues_travel_with_the_reader_and_win_over_the_regression(tmp_path):
    reader = fit_reader(phrasebook("train"), np.random.default_rng(0), 200, cues=Cues(()))
    cued = dataclasses.replace(reader, cues=Cues((("tempo", "slow", "glacial"),)))
    assert cued.read("glacial")[0].tempo == "slow"
    assert cued.read("glacial")[1]["tempo"] == 1.0
    cued.save(tmp_path / "reader.npz")
    assert Reader.load(tmp_path / "reader.npz").cues == cued.cues


def test_regression_skips_cued_clauses_and_unsure_readings(tmp_path):
    # A regression that reads every clause as a low register, 0.6 probable (logit gap ln 1.5).
    biases = np.array([0.0, np.log(1.5)], np.float32)
    reader = Reader(["none", "register=low"], np.zeros((2, 384), np.float32), biases, Cues.load(),
                    threshold=0.5)  # fmt: skip
    assert reader.read("for the opening titles")[0] == Attributes(register="low")
    # The cue reads the clause's density; the regression adds nothing to that clause.
    assert reader.read("low in note density")[0] == Attributes(density="sparse")
    unsure = dataclasses.replace(reader, threshold=0.7)
    assert unsure.read("for the opening titles")[0] == Attributes()
    unsure.save(tmp_path / "reader.npz")
    assert Reader.load(tmp_path / "reader.npz").threshold == 0.7


def test_controls_for_keeps_explicit_values():
    heard = Attributes(tempo="fast", mode="minor", meter="compound", density="sparse",
                       register="high")  # fmt: skip
    ctl = controls_for(heard, tonic=2)
    assert (ctl.key, ctl.meter, ctl.tempo) == ((2, "minor"), (6, 8), 144.0)
    assert ctl.roles == (0,) and ctl.register_tilt > 0
    ctl = controls_for(heard, key=(7, "major"), meter=(3, 4), tempo=90.0, intensity=(0,))
    assert (ctl.key, ctl.meter, ctl.tempo, ctl.intensity) == ((7, "major"), (3, 4), 90.0, (0,))
    assert ctl.roles is None  # an explicit intensity leaves the voices to the style
    plain = controls_for(Attributes())
    assert (plain.key, plain.meter, plain.tempo, plain.register_tilt) == ((0, "major"), (4, 4),
                                                                          100.0, 0.0)  # fmt: skip


def test_pitch_tilt_moves_the_register(tiny_checkpoint):
    from composer.evaluate.metrics import notes_of
    from composer.model import load_checkpoint

    tiny = load_checkpoint(tiny_checkpoint)
    means = []
    for tilt in (-4.0, 0.0, 4.0):
        req = GenerationRequest(style="folk", key=(0, "major"), meter=(4, 4),
                                controls=uniform_controls(4, [2]), candidates=2, seed=0,
                                register_tilt=tilt)  # fmt: skip
        rows, _, _ = sample(tiny, req)
        means.append(np.mean([np.mean(notes_of(tiny.tokenizer, r).pitch) for r in rows]))
    assert means[0] < means[1] < means[2]


def test_fast_decoder_prefix_vectors_match_transformers(tiny_checkpoint):
    from composer.model import load_checkpoint
    from composer.model.fast import FastDecoder

    model = load_checkpoint(tiny_checkpoint).model
    torch.manual_seed(0)
    vectors = torch.randn(2, 3, model.config.hidden_size) * 0.02
    ids = torch.randint(0, 100, (2, 12))
    with torch.inference_mode():
        embeds = torch.cat([vectors, model.get_input_embeddings()(ids)], 1)
        ref = model(inputs_embeds=embeds).logits[:, -1]
    fast = FastDecoder(model, batch=2, max_len=32, dtype=torch.float32)
    fast.forward_all(embeds=vectors)
    fast.forward_all(ids[:, :8])
    for j in range(8, 12):
        got = fast.forward(ids[:, j : j + 1])
    assert torch.allclose(got, ref, atol=1e-4)


def test_prefix_vectors_change_the_music_and_keep_the_grammar(tiny_checkpoint):
    from composer.model import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    req = GenerationRequest(style="folk", key=(0, "major"), meter=(3, 4),
                            controls=uniform_controls(2, [1, 2]), candidates=2, seed=3)  # fmt: skip
    hidden = ckpt.model.config.hidden_size
    a, b = torch.randn(2, 4, hidden, generator=torch.Generator().manual_seed(1))
    rows = {}
    # The lean decoder (Mixtral) and transformers' forward (qwen2_moe) both place the vectors.
    for lean, model in ((True, ckpt), (False, tiny_decoder("qwen2_moe"))):
        for name, prefix in (("none", None), ("a", Prefix(a)), ("guided", Prefix(a, b, 3.0))):
            ids, _, _ = sample(model, req, prefix=prefix)
            assert all(row.count(ckpt.tokenizer.bar_id) == 2 for row in ids)
            rows[(lean, name)] = ids
    assert rows[(True, "a")] != rows[(True, "none")]
    assert rows[(True, "guided")] != rows[(True, "a")]
    assert sample(ckpt, req, prefix=Prefix(a))[0] == rows[(True, "a")]  # same seed, same output
    assert sample(ckpt, req, prefix=Prefix(a, b, 1.0))[0] == rows[(True, "a")]  # 1: no guidance


def test_guided_logits_push_away_from_the_neutral_prefix(tiny_checkpoint):
    from composer.model import load_checkpoint
    from composer.model.decode import _Forward

    model = load_checkpoint(tiny_checkpoint).model
    a, b = torch.randn(2, 3, model.config.hidden_size, generator=torch.Generator().manual_seed(2))
    restart, step = [[1, 5, 9], [1, 6, 7]], torch.tensor([[11], [12]])
    for lean in (True, False):
        logp = {}
        for name, prefix in (("a", Prefix(a)), ("b", Prefix(b)), ("guided", Prefix(a, b, 2.5))):
            out = _Forward(model, 2, 64, lean, prefix)(step, restart)  # (2, 1, V)
            logp[name] = torch.log_softmax(out, -1)
        expected = torch.log_softmax(logp["b"] + 2.5 * (logp["a"] - logp["b"]), -1)
        torch.testing.assert_close(logp["guided"], expected, atol=2e-3, rtol=1e-3)


@pytest.fixture(scope="module")
def instructed(tiny_checkpoint, tmp_path_factory):
    """A copy of the tiny checkpoint with an instruct adapter trained for 3 steps."""
    from composer.model import load_checkpoint
    from composer.train.instruct import InstructTrainConfig, train_instruct
    from composer.train.run import load_data

    root = tmp_path_factory.mktemp("instruct")
    model = root / "tiny"
    shutil.copytree(tiny_checkpoint, model)
    write_midi_folder(root / "tunes")
    tok = load_checkpoint(model).tokenizer
    cache = load_data([root / "tunes"], "folk", root / "cache", tok, seed=0, workers=1).folder
    config = InstructTrainConfig(instruct=InstructConfig(anchors=40), seq_len=128, batch_size=4,
                                 steps=3, val_windows=8, reader_examples=120)  # fmt: skip
    result = train_instruct(model=model, cache=cache, config=config)
    return model, result


def test_instruct_adapter_trained_saved_and_loaded(instructed):
    from composer.model import load_checkpoint
    from composer.model.adapters import MAX_ADAPTER_BYTES
    from composer.train.data import TokenCache
    from composer.train.instruct import InstructTrainConfig, anchor_texts

    model, result = instructed
    assert result.steps == 3 and result.path == model / "adapters" / "instruct"
    files = {f.name for f in result.path.iterdir()}
    assert {"prefix.safetensors", "anchors.txt", "reader.npz", "instruct.json"} <= files
    assert sum(f.stat().st_size for f in result.path.iterdir()) <= MAX_ADAPTER_BYTES
    assert set(result.reader_accuracy) == set(ATTRIBUTES)
    base = load_checkpoint(model)
    inst = load_instruct(base, model)
    assert inst.config == InstructConfig(anchors=40) and inst.anchors.shape == (40, 384)
    # The anchors are instructions for measured training windows: redrawn from the same seed,
    # cache and thresholds, they are the same texts.
    (cache,) = model.parent.glob("data-user-*")  # the fixture's cache of its tunes
    data = TokenCache.load(cache, base.tokenizer)
    config = InstructTrainConfig(instruct=inst.config, seq_len=128)
    anchors = anchor_texts(data, base.tokenizer, inst.thresholds, config)
    assert (result.path / "anchors.txt").read_text().splitlines() == anchors
    assert len(set(anchors)) > 1
    v = inst.vectors("slow and dark, in a low register")
    assert v.shape == (InstructConfig().prefix_len, base.model.config.hidden_size)
    assert not torch.equal(v, inst.vectors("fast and bright, high up"))
    assert isinstance(inst.encoder, PrefixEncoder)


def test_generate_with_instruction_cli(instructed, tmp_path, capsys):
    model, _ = instructed
    forget_checkpoints()
    args = ["generate", "--model", str(model), "--bars", "2", "-n", "2", "--tempo", "88",
            "--instruction", "in a minor key, in triple time"]  # fmt: skip
    for adapter in ("none", "instruct"):  # the reader's controls; with the prefix as well
        out = tmp_path / f"{adapter}.mid"
        assert main([*args, "--adapter", adapter, "-o", str(out)]) == 0
        text = capsys.readouterr().out
        assert "instruction read as:" in text and "at 88 bpm" in text and out.exists()
    assert main([*args[:-2], "--adapter", "instruct", "-o", str(tmp_path / "x.mid")]) == 1
    assert "give one" in capsys.readouterr().err


def test_missing_or_corrupt_instruct_adapter_is_one_line(instructed, tiny_checkpoint, tmp_path):
    from composer.errors import ComposerError
    from composer.model import load_checkpoint

    with pytest.raises(ComposerError, match="no instruct adapter"):
        load_instruct(load_checkpoint(tiny_checkpoint), tiny_checkpoint)
    model, _ = instructed
    broken = tmp_path / "tiny"
    shutil.copytree(model, broken)
    (broken / "adapters" / "instruct" / "prefix.safetensors").write_bytes(b"junk")
    with pytest.raises(ComposerError, match="corrupt instruct adapter"):
        load_instruct(load_checkpoint(broken), broken)
    emptied = tmp_path / "emptied"
    shutil.copytree(model, emptied)
    (emptied / "adapters" / "instruct" / "anchors.txt").write_text("")
    with pytest.raises(ComposerError, match="anchors.txt is empty"):
        load_instruct(load_checkpoint(emptied), emptied)


def test_anchoring_blends_the_nearest_anchors():
    rng = np.random.default_rng(0)
    anchors = rng.normal(size=(50, 384))
    anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
    # A query close to anchor 7 comes back as anchor 7 when the temperature is sharp, and as
    # a unit-length blend of exactly k anchors when it is not.
    query = anchors[7] + 0.3 * anchors[3]
    query /= np.linalg.norm(query)
    sharp = anchored(query, anchors, k=4, temperature=1e-3)
    np.testing.assert_allclose(sharp, anchors[7], atol=1e-5)
    soft = anchored(query, anchors, k=2, temperature=1e3)
    expected = anchors[7] + anchors[3]
    np.testing.assert_allclose(soft, expected / np.linalg.norm(expected), atol=1e-2)
    assert soft.dtype == np.float32 and abs(np.linalg.norm(soft) - 1) < 1e-5


def test_eval_instructions_reports_both_arms(instructed, tmp_path):
    from composer.evaluate.instructions import eval_instructions

    model, _ = instructed
    report = eval_instructions(model, n=3, bars=2, candidates=2, free_pieces=2, out=tmp_path)
    assert len(report.rows) == 3 and len(report.free) == 5  # three free-text, two character pairs
    for row in report.rows:
        assert set(row.met) == set(row.stated) == set(row.met_base) and row.stated
    assert 0.0 <= report.rate() <= 1.0 and 0.0 < report.free[0].p_value <= 1.0
    assert "base+controls" in (tmp_path / "instructions.txt").read_text()
    assert "unsaid read" in report.table() and 0.0 <= report.read_rate() <= 1.0
    # --free 0: the adherence table alone.
    alone = eval_instructions(model, n=1, bars=2, candidates=2, free_pieces=0)
    assert len(alone.rows) == 1 and alone.free == []


def test_free_text_only_report_has_no_adherence_table():
    from composer.evaluate.instructions import FreeTextRow, InstructionsEval

    free = FreeTextRow(
        "a rocking lullaby feel", "like a march", 32, 0.447, {"notes/beat": (3.1, 3.0)}
    )
    text = InstructionsEval("m", 8, rows=[], free=[free]).table()
    assert "nan" not in text and "base+controls" not in text and "target" not in text
    assert "'a rocking lullaby feel' vs 'like a march': p = 0.447" in text


def test_instruct_training_fits_its_schedule_to_the_time_limit(
    tiny_checkpoint, instructed, tmp_path
):
    from composer.model import load_checkpoint
    from composer.train.instruct import InstructTrainConfig, train_instruct
    from composer.train.run import load_data

    model = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoint, model)
    write_midi_folder(tmp_path / "tunes")
    tok = load_checkpoint(model).tokenizer
    cache = load_data([tmp_path / "tunes"], "folk", tmp_path / "cache", tok, seed=0, workers=1)
    # No step count: the limit, long past after 20 steps, leaves the schedule's floor of 40.
    config = InstructTrainConfig(instruct=InstructConfig(anchors=40), seq_len=128, batch_size=4,
                                 minutes=1e-4, val_windows=8, reader_examples=120)  # fmt: skip
    result = train_instruct(model=model, cache=cache.folder, config=config)
    assert result.steps == 40
    # The reader has its own generator: 40 steps fit the same reader as the fixture's 3.
    three = instructed[1]
    assert result.reader_accuracy == three.reader_accuracy
    with np.load(result.path / "reader.npz") as a, np.load(three.path / "reader.npz") as b:
        assert a.files == b.files
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
