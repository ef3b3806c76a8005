"""Constrained generation with a tiny random model: the grammar alone guarantees valid scores."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import tiny_decoder

from composer.model import Checkpoint
from composer.model.decode import decode, sample
from composer.model.generate import uniform_controls
from composer.tokens.tokenizer import BAR, POSITION, PROGRAM
from composer.types import BarControls, GenerationRequest


@pytest.fixture(scope="module")
def tiny() -> Checkpoint:
    return tiny_decoder()


@pytest.fixture(scope="module")
def tiny_qwen() -> Checkpoint:
    """Decodes through transformers' forward (the lean decoder runs Mixtral only)."""
    return tiny_decoder("qwen2_moe")


@pytest.mark.parametrize("meter,bars", [((4, 4), 3), ((3, 4), 4), ((6, 8), 2), ((5, 4), 2)])
def test_every_candidate_decodes_with_exact_bars_and_meter(tiny, meter, bars):
    req = GenerationRequest(
        style="chorale",
        key=(2, "minor"),
        meter=meter,
        controls=uniform_controls(bars, [0, 3]),
        candidates=3,
        seed=1,
    )
    res = decode(tiny, req)
    tok = tiny.tokenizer
    assert len(res.candidates) == 3
    for c in res.candidates:
        assert c.ids[-1] == tok.eos_id
        measured = tok.bars(c.ids)
        assert len(measured) == bars
        assert all(b["meter"] == meter for b in measured)
        assert [b["intensity"] for b in measured] == [[0, 3][i % 2] for i in range(bars)]
        score = tok.decode(c.ids)  # decodes without error
        assert all(0 <= n.pitch < 128 for t in score.tracks for n in t.notes)
        end = max((n.end for t in score.tracks for n in t.notes), default=0)
        bar_ticks = score.ticks_per_quarter * 4 * meter[0] // meter[1]
        assert end <= bars * bar_ticks + 12 * score.ticks_per_quarter  # long last notes only


def test_hits_sections_and_roles_are_forced(tiny):
    tok = tiny.tokenizer
    controls = (BarControls(1, None, True), BarControls(2, 2, False), BarControls(1, 0, True))
    req = GenerationRequest(
        style="quartet",
        key=(7, "major"),
        meter=(4, 4),
        controls=controls,
        roles=(0, 5),
        candidates=2,
        seed=3,
    )
    for c in decode(tiny, req).candidates:
        bars = tok.bars(c.ids)
        assert [b["hit"] for b in bars] == [None, 2, 0]
        assert [b["section"] for b in bars] == [True, False, True]
        for b, want in zip(bars, controls, strict=True):
            if want.hit is not None:
                at = {r for p, r, _ in b["onsets"] if p == want.hit * tok.steps_per_beat}
                assert len(at) >= 2
        assert {r for b in bars for _, r, _ in b["onsets"]} <= {0, 5}


def test_a_style_writes_its_corpus_texture_unless_roles_are_named(tiny):
    tok = tiny.tokenizer
    ckpt = dataclasses.replace(tiny, info={"style_roles": {"folk": [0], "chorale": [0, 1, 2, 5]}})
    req = GenerationRequest(
        style="folk", key=(0, "major"), meter=(4, 4), controls=uniform_controls(2, [2]), seed=5
    )

    def roles(res):
        return {r for c in res.candidates for b in tok.bars(c.ids) for _, r, _ in b["onsets"]}

    folk = decode(ckpt, req)
    assert folk.request.roles == (0,) and roles(folk) == {0}
    named = decode(ckpt, dataclasses.replace(req, roles=(0, 5)))
    assert roles(named) <= {0, 5} and 5 in roles(named)
    assert decode(ckpt, dataclasses.replace(req, style="piano")).request.roles is None


def test_same_seed_same_tokens(tiny):
    req = GenerationRequest(
        style="folk",
        key=(0, "major"),
        meter=(2, 4),
        controls=uniform_controls(3),
        candidates=2,
        seed=7,
    )
    a = decode(tiny, req)
    b = decode(tiny, req)
    assert [c.ids for c in a.candidates] == [c.ids for c in b.candidates]
    c = decode(tiny, dataclasses.replace(req, seed=8))
    assert [x.ids for x in c.candidates] != [x.ids for x in a.candidates]


def test_fast_decoder_matches_transformers_forward(tiny):
    import torch

    from composer.model.fast import FastDecoder

    torch.manual_seed(0)
    ids = torch.randint(0, len(tiny.tokenizer), (3, 40))
    with torch.inference_mode():
        ref = tiny.model(input_ids=ids).logits  # (3, 40, V)
    # float32 weights: the same computation as transformers, to rounding.
    fast = FastDecoder(tiny.model, batch=3, max_len=64, dtype=torch.float32)
    got = fast.forward(ids[:, :30])  # prefill: many positions at once, causal mask
    assert torch.allclose(got, ref[:, 29], atol=1e-4)
    for j in range(30, 40):  # then one token per step, from the KV cache
        got = fast.forward(ids[:, j : j + 1])
    assert torch.allclose(got, ref[:, 39], atol=1e-4)
    # bf16 weights (the default, as the checkpoint stores them): the same distribution.
    fast = FastDecoder(tiny.model, batch=3, max_len=64)
    fast.forward(ids[:, :30])
    for j in range(30, 40):
        got = fast.forward(ids[:, j : j + 1])
    p, q = torch.softmax(got, -1), torch.softmax(ref[:, 39], -1)
    assert (p - q).abs().sum(-1).max() < 0.05
    assert torch.equal(got.argmax(-1), ref[:, 39].argmax(-1))


def test_lean_and_transformers_paths_both_write_valid_output(tiny, tiny_qwen):
    from composer.model.decode import sample

    req = GenerationRequest(
        style="chorale",
        key=(0, "major"),
        meter=(3, 4),
        controls=uniform_controls(2, [1, 2]),
        candidates=2,
        seed=5,
    )
    for ckpt in (tiny, tiny_qwen):
        rows, lps, _ = sample(ckpt, req)
        assert all(len(tiny.tokenizer.bars(r)) == 2 for r in rows)
        assert all(lp < 0 for lp in lps)


def test_cadence_ends_on_the_tonic_triad(tiny):
    from composer.evaluate.metrics import notes_of

    tok = tiny.tokenizer
    req = GenerationRequest(
        style="chorale", key=(9, "minor"), meter=(4, 4), controls=uniform_controls(2, [2]),
        candidates=3, seed=4,
    )  # fmt: skip
    for c in decode(tiny, req).candidates:
        notes = notes_of(tok, c.ids)
        last = notes.onset >= notes.bar_starts[-1]
        assert last.any() and set(notes.pitch[last] % 12) <= {9, 0, 4}  # A C E
        bass = [tok.bars(c.ids)[-1]["onsets"][i][1] == 5 for i in range(int(last.sum()))]
        assert all(p % 12 == 9 for p, b in zip(notes.pitch[last], bass, strict=True) if b)


def test_every_role_plays_in_every_bar_when_asked(tiny):
    req = GenerationRequest(
        style="quartet", key=(0, "major"), meter=(3, 4), controls=uniform_controls(3, [1]),
        roles=(0, 2, 5), every_role_every_bar=True, candidates=2, seed=9,
    )  # fmt: skip
    for c in decode(tiny, req).candidates:
        for bar in tiny.tokenizer.bars(c.ids):
            assert {role for _, role, _ in bar["onsets"]} == {0, 2, 5}


def test_given_notes_are_written_where_they_stand_and_the_rest_around_them(tiny):
    """An edit's kept parts: forced at their positions, chords and cadence bar included, while
    the row writes its own role before (lower roles) and between them."""
    tok = tiny.tokenizer
    v = tok.vocab

    def note(role, pitch):
        return (v[f"Program_{role}"], v[f"Pitch_{pitch}"], v["Velocity_95"], v["Duration_1.0.12"])

    given = (
        ((0, note(1, 64) + note(1, 67) + note(5, 48)), (12, note(5, 43))),
        (),
        ((24, note(5, 45)),),
    )
    controls = (BarControls(1), BarControls(2, 1), BarControls(1))
    req = GenerationRequest(
        style="quartet", key=(0, "major"), meter=(4, 4), controls=controls, roles=(0,),
        candidates=3, seed=11, kept=given,
    )  # fmt: skip
    for draft in (3, 0):  # drafted tokens are checked against the same grammar
        for ids in sample(tiny, req, draft=draft)[0]:
            assert len(tok.bars(ids)) == 3
            written, length = tok.notes(ids)
            bar = length // 3
            kept = sorted((t, r, p) for t, r, p, _ in written if r != 0)
            assert kept == [(0, 1, 64), (0, 1, 67), (0, 5, 48), (12, 5, 43), (2 * bar + 24, 5, 45)]
            assert {r for _, r, _, _ in written} <= {0, 1, 5}
            # Within a position the roles ascend, as the corpus writes them.
            positions = [i for i, t in enumerate(ids) if tok.kind[t] in (POSITION, BAR)]
            for a, b in zip(positions, positions[1:] + [len(ids)], strict=True):
                roles = [int(tok.value[t]) for t in ids[a:b] if tok.kind[t] == PROGRAM]
                assert roles == sorted(roles)
            assert any(r == 0 for _, r, _, _ in written)


def test_pitches_are_written_against_the_kept_parts_sounding(tiny):
    """constraints.Against: where kept notes sound, the row's own pitches dissonant with them
    lose ``against_penalty``; a large one leaves only consonant pitches there."""
    tok = tiny.tokenizer
    bar = 4 * tok.steps_per_beat
    held = ((0, bar, 60), (0, bar // 2, 64))  # C for the bar, E for its first half
    consonant = {0, 3, 4, 7, 8, 9}

    def pitches(penalty: float) -> list[tuple[int, int]]:
        req = GenerationRequest(
            style="quartet", key=(0, "major"), meter=(4, 4), controls=uniform_controls(2, [2]),
            roles=(0,), candidates=3, seed=5, cadence=False, against=(held, held),
            against_penalty=penalty,
        )  # fmt: skip
        out = []
        for c in decode(tiny, req).candidates:
            notes, _ = tok.notes(c.ids)
            out += [(t % bar, p % 12) for t, _, p, _ in notes]
        return out

    def fits(t: int, pc: int) -> bool:
        return all((pc - q % 12) % 12 in consonant for a, b, q in held if a <= t < b)

    assert not all(fits(t, pc) for t, pc in pitches(0.0))  # the tiny decoder is random
    assert all(fits(t, pc) for t, pc in pitches(50.0))


def test_speculative_acceptance_draws_from_the_target_distribution():
    import torch

    from composer.model.draft import accept

    # One row, vocabulary of 4: the first position's distribution p, the next one's q.
    p = torch.tensor([0.1, 0.3, 0.6, 0.0])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    probs = torch.stack([p, q])[None].expand(20000, 2, 4)
    gen = torch.Generator().manual_seed(0)
    kept, drawn = accept(probs, [[1]] * 20000, gen)  # draft token 1 at the first position
    kept = torch.tensor(kept)
    first = torch.where(kept == 1, torch.ones_like(drawn), drawn)  # the token at position 0
    freq = torch.bincount(first, minlength=4).float() / 20000
    assert torch.allclose(freq, p, atol=0.015)  # exactly p, whatever the draft
    assert abs(kept.float().mean() - 0.3) < 0.015  # kept with probability p(draft)
    after = drawn[kept == 1]  # drawn from the next position's distribution
    assert torch.allclose(torch.bincount(after, minlength=4).float() / len(after), q, atol=0.03)


def test_drafts_change_speed_not_validity(tiny):
    from composer.model.decode import sample

    req = GenerationRequest(
        style="folk", key=(7, "major"), meter=(6, 8), controls=uniform_controls(3, [1, 3]),
        candidates=3, seed=2,
    )  # fmt: skip
    for draft in (0, 5):
        rows, lps, _ = sample(tiny, req, draft=draft)
        assert all(len(tiny.tokenizer.bars(r)) == 3 for r in rows)
        assert all(r[-1] == tiny.tokenizer.eos_id for r in rows)
        assert sample(tiny, req, draft=draft)[0] == rows  # same seed, same tokens


def test_rows_longer_than_the_context_slide_on(tiny, tiny_qwen):
    from composer.model.decode import sample

    # The tiny model's context is 256 tokens; 12 busy bars run well past it.
    req = GenerationRequest(
        style="chorale", key=(0, "major"), meter=(4, 4), controls=uniform_controls(12, [3]),
        candidates=2, seed=1,
    )  # fmt: skip
    for ckpt in (tiny, tiny_qwen):
        rows, _, _ = sample(ckpt, req)
        assert max(map(len, rows)) > tiny.spec.context
        assert all(len(tiny.tokenizer.bars(r)) == 12 for r in rows)


def test_cache_restarts_only_when_full(tiny, monkeypatch):
    """Rows longer than the context slide the window: a restart keeps 3/4 of the context, so
    the next one comes a quarter context later, not at every step."""
    import composer.model.decode as G

    restarts = []
    call = G._Forward.__call__

    def counting(self, step, prefix):
        if prefix is not None:
            restarts.append(len(prefix[0]))
        return call(self, step, prefix)

    monkeypatch.setattr(G._Forward, "__call__", counting)
    req = GenerationRequest(style="chorale", key=(0, "major"), meter=(4, 4),
                            controls=uniform_controls(24, [3]), candidates=2, seed=1)  # fmt: skip
    rows, _, _ = G.sample(tiny, req)
    longest = max(map(len, rows))
    context = tiny.spec.context
    assert longest > context  # the window had to slide
    assert 2 <= len(restarts) <= 2 + 4 * longest // context
    assert all(r.count(tiny.tokenizer.bar_id) == 24 for r in rows)
