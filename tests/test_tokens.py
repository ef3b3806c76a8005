"""The tokenizer: roles survive a round trip, controls are measured and placed, files match."""

from __future__ import annotations

import json

import numpy as np
import pytest
import symusic

from composer.errors import ComposerError
from composer.music.keys import parse_key
from composer.tokens import ScoreTokenizer, TokenizerSpec
from composer.tokens.tokenizer import HIT, INTENSITY, KEY, PITCH, TIMESIG

TPQ = 480


@pytest.fixture(scope="module")
def tok() -> ScoreTokenizer:
    return ScoreTokenizer()


def chorale(bars: int = 4, held_last_beat: bool = True) -> symusic.Score:
    """Four voices in quarter notes; each bar ends on a half note, then all attack together."""
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for role, base in ((0, 72), (1, 67), (2, 64), (5, 48)):
        t = symusic.Track(f"r{role}", role, False)
        for b in range(bars):
            start = b * 4 * TPQ
            for beat, dur in (
                ((0, 1), (1, 1), (2, 2)) if held_last_beat else ((0, 1), (1, 1), (2, 1), (3, 1))
            ):
                t.notes.append(symusic.Note(start + beat * TPQ, dur * TPQ, base + b % 3, 80))
        s.tracks.append(t)
    return s


def test_round_trip_keeps_roles_and_notes(tok):
    score = chorale()
    ids = tok.encode(score, "chorale", (2, "minor"))
    assert [tok.tokens[i] for i in ids[:3]] == ["BOS_None", "Style_chorale", "Key_Dm"]
    assert ids[-1] == tok.eos_id
    back = tok.decode(ids)
    got = {t.name: len(t.notes) for t in back.tracks}
    assert got == {"melody": 12, "harmony1": 12, "harmony2": 12, "bass": 12}
    pitches = sorted(n.pitch for t in back.tracks for n in t.notes)
    assert pitches == sorted(n.pitch for t in score.tracks for n in t.notes)


def test_controls_follow_each_timesig(tok):
    ids = tok.encode(chorale(), "chorale", (0, "major"), section_ticks=[2 * 4 * TPQ])
    toks = [tok.tokens[i] for i in ids]
    bar_at = [i for i, t in enumerate(toks) if t == "Bar_None"]
    assert len(bar_at) == 4
    for n, i in enumerate(bar_at):
        assert tok.kind[ids[i + 1]] == TIMESIG
        follow = toks[i + 2 : i + 5]
        assert ("Section_start" in follow) == (n in (0, 2))
        assert any(t.startswith("Intensity_") for t in follow)
    # Bars 2-4 start with everyone attacking after a two-beat chord: hits on beat 0.
    bars = tok.bars(ids)
    assert [b["hit"] for b in bars] == [None, 0, 0, 0]
    assert all(b["intensity"] is not None for b in bars)


def test_intensity_grows_with_density(tok):
    sparse = chorale(held_last_beat=True)
    dense = symusic.Score(TPQ)
    dense.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    t = symusic.Track("m", 0, False)
    for i in range(4 * 4 * 4):  # sixteenth notes
        t.notes.append(symusic.Note(i * TPQ // 4, TPQ // 4, 60 + i % 12, 80))
    dense.tracks.append(t)
    lo = tok.measure_controls(tok.encode(sparse, "chorale", (0, "major")))
    hi = tok.measure_controls(tok.encode(dense, "fiddle", (0, "major")))
    assert max(c.intensity for c in lo) < min(c.intensity for c in hi) == 3


def test_transposition_shifts_pitches_and_key(tok):
    ids = np.array(tok.encode(chorale(), "chorale", (9, "minor")))
    up = tok.transpose(ids, 3)
    assert tok.tokens[up[2]] == "Key_Cm"
    p0 = tok.value[ids][tok.kind[ids] == PITCH]
    p1 = tok.value[up][tok.kind[up] == PITCH]
    assert (p1 - p0 == 3).all()
    assert (tok.kind[up] == tok.kind[ids]).all()
    assert tok.transpose(ids, -12) is not None
    high = np.array([tok.vocab["Pitch_106"]])
    assert tok.transpose(high, 5) is None  # out of range


def test_save_load_and_mismatch(tok, tmp_path):
    path = tok.save(tmp_path / "t.json")
    assert ScoreTokenizer.load(path).vocab_hash == tok.vocab_hash
    data = json.loads(path.read_text())
    data["vocab_hash"] = "0" * 16
    path.write_text(json.dumps(data))
    with pytest.raises(ComposerError, match="vocabulary differs"):
        ScoreTokenizer.load(path)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ComposerError, match="not a composer tokenizer"):
        ScoreTokenizer.load(tmp_path / "bad.json")


def test_shipped_tokenizer_matches_the_code():
    shipped = ScoreTokenizer.named(TokenizerSpec().name)
    assert shipped.vocab_hash == ScoreTokenizer().vocab_hash


def test_vocabulary_kinds(tok):
    assert (tok.kind == KEY).sum() == 24
    assert (tok.kind == INTENSITY).sum() == tok.spec.intensity_levels
    assert (tok.kind == HIT).sum() == tok.spec.max_hit_beats
    with pytest.raises(ValueError, match="valid styles"):
        tok.header("polka", (0, "major"))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("D minor", (2, "minor")),
        ("Dm", (2, "minor")),
        ("F# major", (6, "major")),
        ("Bb", (10, "major")),
        ("eb minor", (3, "minor")),
    ],
)
def test_parse_key(text, expected):
    assert parse_key(text) == expected


def test_parse_key_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys: C major"):
        parse_key("H major")
