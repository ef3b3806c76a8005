"""Priming the decoder from a reference: excerpt in the request's key and meter, or controls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import symusic

from composer.cli import main
from composer.errors import ComposerError
from composer.model.checkpoint import load_checkpoint
from composer.model.decode import decode
from composer.model.generate import uniform_controls
from composer.model.prime import (
    Reference,
    load_reference,
    plan_priming,
    prime,
    reference_from_ids,
)
from composer.music.scores import CorpusPiece
from composer.tokens import ScoreTokenizer, TokenizerSpec
from composer.tokens.tokenizer import BAR, PITCH, TIMESIG
from composer.types import BarControls, GenerationRequest

TPQ = 480


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer.named(TokenizerSpec().name)


def scale_score(meters: list[tuple[int, int]], tonic: int = 60, seed: int = 0) -> symusic.Score:
    """One bar per meter, a melody of quarter notes from a major scale on ``tonic`` and a bass
    note per bar; the bar lines follow the meters."""
    rng = np.random.default_rng(seed)
    steps = [0, 2, 4, 5, 7, 9, 11]
    score = symusic.Score(TPQ)
    melody, bass = symusic.Track("melody", 0, False), symusic.Track("bass", 5, False)
    t = 0
    for num, den in meters:
        if not score.time_signatures or (
            (score.time_signatures[-1].numerator, score.time_signatures[-1].denominator)
            != (num, den)
        ):
            score.time_signatures.append(symusic.TimeSignature(t, num, den))
        length = num * 4 * TPQ // den
        for q in range(0, length, TPQ):
            melody.notes.append(symusic.Note(t + q, TPQ, tonic + 12 + int(rng.choice(steps)), 80))
        bass.notes.append(symusic.Note(t, length, tonic - 12, 80))
        t += length
    score.tracks.extend([melody, bass])
    return score


def reference(tok, meters, key=(0, "major"), tonic=60, name="ref") -> Reference:
    ids = tok.encode(scale_score(meters, tonic), "folk", key)
    return reference_from_ids(name, ids, tok)


def request(key=(0, "major"), meter=(4, 4), bars=4) -> GenerationRequest:
    return GenerationRequest(
        style="folk", key=key, meter=meter, controls=uniform_controls(bars, [1, 2]), candidates=2
    )


def pitches(tok, ids) -> list[int]:
    ids = np.asarray(ids)
    return tok.value[ids][tok.kind[ids] == PITCH].tolist()


def test_excerpt_is_transposed_to_the_request_key(tok):
    ref = reference(tok, [(4, 4)] * 6)
    # E minor is G major's relative: the excerpt moves by C -> G.
    for key, expected in [((2, "major"), 2), ((7, "major"), 7), ((4, "minor"), 7)]:
        how = plan_priming(request(key=key), ref, tok, bars=2)
        assert how.mode == "excerpt"
        assert how.shift % 12 == expected, key
        slices = ref.bar_slices(tok)
        source = ref.ids[slices[how.bars[0]][0] : slices[how.bars[-1]][1]]
        assert [p + how.shift for p in pitches(tok, source)] == pitches(tok, how.primer)
        # The octave nearest the excerpt's own register: never more than a tritone away.
        assert -6 <= how.shift <= 6
    # A minor reference to C major: the relative key, no shift.
    minor = reference(tok, [(4, 4)] * 4, key=(9, "minor"))
    assert plan_priming(request(key=(0, "major")), minor, tok).shift == 0


def test_octave_that_stays_in_range(tok):
    # A melody near the top of the range (up to MIDI 107) cannot go up 5; it goes down 7.
    ref = reference(tok, [(4, 4)] * 4, tonic=84)
    how = plan_priming(request(key=(5, "major")), ref, tok)
    assert how.shift == -7
    assert max(pitches(tok, how.primer)) <= tok.spec.pitch_range[1]


def test_excerpt_keeps_the_meter_and_whole_bars(tok):
    ref = reference(tok, [(3, 4)] * 4 + [(4, 4)] * 3)
    req = request(meter=(4, 4))
    how = plan_priming(req, ref, tok, bars=2)
    assert how.mode == "excerpt" and all(b >= 4 for b in how.bars)
    primer = np.asarray(how.primer)
    kinds = tok.kind[primer]
    assert kinds[0] == BAR and (kinds == BAR).sum() == 2
    assert {tok.tokens[i] for i in primer[kinds == TIMESIG]} == {"TimeSig_4/4"}
    # Each bar in the grammar's layout: Bar TimeSig, then its controls.
    assert tok.tokens[primer[2]].startswith(("Section", "Intensity"))
    primed = prime(req, ref, tok, bars=2)
    assert primed.primer == how.primer and primed.controls == req.controls


def test_meter_mismatch_falls_back_to_the_reference_controls(tok):
    ref = reference(tok, [(3, 4)] * 5)
    hit = BarControls(intensity=1, hit=2, section=False)
    req = dataclasses.replace(request(meter=(4, 4), bars=7), controls=(hit,) * 7)
    how = plan_priming(req, ref, tok)
    assert how.mode == "controls" and "3/4" in how.reason and "4/4" in how.reason
    measured = [c.intensity for c in tok.measure_controls(list(ref.ids))]
    assert list(how.intensity) == measured
    primed = how.apply(req)
    assert primed.primer == ()
    assert [c.intensity for c in primed.controls] == [measured[i % 5] for i in range(7)]
    assert all(c.hit == 2 for c in primed.controls)  # the plan's hits stay


def test_corpus_piece_and_file_references(tmp_path, tok):
    score = scale_score([(4, 4)] * 4)
    piece = CorpusPiece("mine/a.mid", "mine", "user", "a", score, 0, "major", [(0, 4, 4)],
                        [0], 2)  # fmt: skip
    primed = prime(request(key=(2, "major")), piece, tok)
    assert len(primed.primer) > 0
    abc = tmp_path / "tunes.abc"
    abc.write_text(
        "X:1\nT:One\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|cBAG|FEDC|]\n\n"
        "X:2\nT:Two\nM:3/4\nL:1/4\nK:G\nGAB|cde|dcB|AGF|G3|]\n"
    )
    two = load_reference(f"{abc}#2", tok)
    assert two.id.endswith("#2") and two.key == (7, "major")
    assert plan_priming(request(meter=(3, 4)), two, tok).mode == "excerpt"
    with pytest.raises(ComposerError, match="no tune #5"):
        load_reference(f"{abc}#5", tok)
    with pytest.raises(ComposerError, match="no such reference file"):
        load_reference(tmp_path / "missing.abc", tok)


def test_primed_output_does_not_contain_the_primer(tiny_checkpoint, tok):
    ckpt = load_checkpoint(tiny_checkpoint)
    ref = reference(tok, [(4, 4)] * 6)
    req = request(key=(2, "major"), bars=3)
    primed = prime(req, ref, tok)
    out = decode(ckpt, primed).best.ids
    plain = decode(ckpt, req).best.ids
    header = tok.header("folk", (2, "major"))
    assert out[:3] == header and out[3] == tok.bar_id
    assert sum(i == tok.bar_id for i in out) == req.bars  # only the requested bars
    assert tuple(out[3 : 3 + len(primed.primer)]) != primed.primer
    assert out != plain  # the same seed: the decoder did read the primer


def test_generate_with_reference_cli(tmp_path, tiny_checkpoint, capsys):
    abc = tmp_path / "tune.abc"
    abc.write_text(
        "X:3\nT:T\nM:4/4\nL:1/4\nK:D\nDEFG|ABcd|dcBA|GFED|]\n\n"
        "X:4\nT:U\nM:4/4\nL:1/4\nK:D\nFGAB|AGFE|DFAd|d4|]\n"
    )
    out = tmp_path / "out.mid"
    args = ["generate", "--style", "folk", "--key", "F major", "--bars", "3", "-n", "1",
            "--model", str(tiny_checkpoint), "-o", str(out)]  # fmt: skip
    assert main([*args, "--reference", f"{abc}#3"]) == 0
    text = capsys.readouterr().out
    assert "primed with bars" in text and "transposed +3 semitones" in text
    assert out.exists()
    assert main([*args, "--force", "--reference", f"{abc}#9"]) == 1
    assert "no tune #9" in capsys.readouterr().err


def test_generate_reference_auto_primes_from_the_shipped_library(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "auto.mid"
    args = ["generate", "--style", "fiddle", "--key", "D major", "--meter", "6/8", "--bars", "2",
            "-n", "1", "--model", str(tiny_checkpoint), "-o", str(out),
            "--reference", "auto"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith("reference: ") and "primed with bars" in text
    assert "meter 6/8 matches" in text
    assert out.exists()
