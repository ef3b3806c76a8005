"""Decoding constraints as small logits processors (transformers' LogitsProcessor interface).

- ``ScoreGrammar``: only tokens that keep the stream a valid score with exactly the requested
  bars and meter, in the voices (roles) asked for; each bar's control tokens forced after its
  TimeSig; a bar with a hit accent gets notes by enough voices on that beat; notes given in
  advance (the parts an edit keeps) forced at their positions, so the voices written read them.
- ``KeyBias``: pitches outside the requested key's scale lose ``penalty`` logits.
- ``Cadence``: the last bar keeps to the tonic triad, with the bass on the tonic.

Each works on a batch of candidates and keeps its own per-row state, updated from the last token
of ``input_ids`` at every call, so they compose in a ``LogitsProcessorList``. The ones that depend
on a row's state also take explicit states (``apply(scores, states)``): a speculative step scores
several positions of a row at once, each with the state its draft prefix leads to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import LogitsProcessor

from composer.music.harmony import CONSONANT
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import (
    BAR,
    DURATION,
    EOS,
    PAD,
    PITCH,
    POSITION,
    PROGRAM,
    TIMESIG,
    VELOCITY,
)
from composer.types import BarControls

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the raised leading tone
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)  # the minor whose dominant has the leading tone


@dataclass
class _Row:
    bar: int = 0  # Bar tokens emitted
    expect: str = "bar"  # bar | timesig | controls | body | pitch | velocity | duration | done
    pending: list[int] = field(default_factory=list)  # control ids still to force in this bar
    pos: int = -1  # position of the current onset group in this bar (-1: none yet)
    roles_here: set[int] = field(default_factory=set)  # roles with an onset at ``pos``
    role: int = -1  # role of the note being written
    roles_bar: set[int] = field(default_factory=set)  # roles with an onset in this bar
    hit_pos: int | None = None  # position that must carry a hit in this bar
    hit_done: bool = True
    kept: int = 0  # groups of this bar's given notes reached
    due: tuple[int, ...] = ()  # tokens of the given notes still to write at ``pos``
    forced: tuple[int, ...] = ()  # the rest of the given note being written

    def copy(self) -> _Row:
        return _Row(
            self.bar, self.expect, list(self.pending), self.pos, set(self.roles_here),
            self.role, set(self.roles_bar), self.hit_pos, self.hit_done, self.kept, self.due,
            self.forced,
        )  # fmt: skip


class ScoreGrammar(LogitsProcessor):
    """REMI grammar for ``bars`` bars of ``meter`` with per-bar controls, for a batch.

    ``kept``: per bar, the notes given in advance as (position, their Program Pitch Velocity
    Duration tokens) in position order. A row reaches each such position (it may not step
    past one, nor end the bar, before) and writes its notes there in the roles they name
    (which need not be among ``roles``, and may be chords); its own voices of lower roles may
    come first, as the corpus orders the roles at a position.
    """

    def __init__(
        self,
        tok: ScoreTokenizer,
        meter: tuple[int, int],
        controls: list[BarControls],
        batch: int,
        prompt_len: int,
        roles: tuple[int, ...] | None = None,
        hit_voices: int = 2,
        every_role_every_bar: bool = False,
        kept: tuple[tuple[tuple[int, tuple[int, ...]], ...], ...] = (),
    ):
        self.tok = tok
        self.bars = len(controls)
        self.controls = controls
        self.kept = kept or ((),) * self.bars
        if len(self.kept) != self.bars:
            raise ValueError(f"notes kept for {len(self.kept)} bars, not {self.bars}")
        self.timesig = tok.vocab[f"TimeSig_{meter[0]}/{meter[1]}"]
        self.positions = meter[0] * tok.steps_per_beat  # miditok counts beats in 1/den units
        if any(pos >= self.positions for bar in self.kept for pos, _ in bar):
            raise ValueError(f"notes given past the end of a bar of {meter[0]}/{meter[1]}")
        # With ``every_role_every_bar`` a bar may end only once each role has played in it:
        # an arrangement's instruments all take part.
        self.required = set(roles) if (roles and every_role_every_bar) else set()
        roles = roles or tuple(range(len(tok.spec.roles)))
        self.hit_voices = min(hit_voices, len(roles))
        k = tok.kind
        self.mask_position = torch.from_numpy(k == POSITION)
        self.pos_value = torch.from_numpy(tok.value.astype(np.int64))
        self.mask_program = torch.from_numpy((k == PROGRAM) & np.isin(tok.value, roles))
        self.any_program = torch.from_numpy(k == PROGRAM)
        self.ordered = any(self.kept)  # roles ascend within a position around given notes
        self.mask = {kind: torch.from_numpy(k == kind) for kind in (PITCH, VELOCITY, DURATION)}
        self.rows = [_Row() for _ in range(batch)]
        self.seen = prompt_len
        # Masks by the part of a state they depend on: a few dozen distinct ones per piece.
        self._masks: dict[tuple, tuple[torch.Tensor, int | None]] = {}

    def done(self) -> list[bool]:
        return [r.expect == "done" for r in self.rows]

    def advance(self, r: _Row, token: int) -> None:
        """Update state ``r`` for ``token`` appended to its row."""
        k = self.tok.kind[token]
        if r.forced:
            r.forced = r.forced[1:]
        if k == BAR:
            r.bar += 1
            r.expect, r.pos, r.roles_here, r.roles_bar = "timesig", -1, set(), set()
            r.kept = 0
            c = self.controls[r.bar - 1]
            r.pending = self.tok.control_ids(c)
            r.hit_pos = None if c.hit is None else c.hit * self.tok.steps_per_beat
            r.hit_done = c.hit is None
        elif k == TIMESIG:
            r.expect = "controls" if r.pending else "body"
        elif r.expect == "controls":
            r.pending.pop(0)
            if not r.pending:
                r.expect = "body"
        elif k == POSITION:
            r.pos, r.roles_here, r.expect = int(self.tok.value[token]), set(), "program"
            given = self._given(r)
            if given is not None and given[0] == r.pos:
                r.due, r.kept = given[1], r.kept + 1
        elif k == PROGRAM:
            if r.due and token == r.due[0]:  # a given note: its pitch, velocity, duration
                r.forced, r.due = r.due[1:4], r.due[4:]
            r.role = int(self.tok.value[token])
            r.roles_here.add(r.role)
            r.roles_bar.add(r.role)
            r.expect = "pitch"
        elif k == PITCH:
            r.expect = "velocity"
        elif k == VELOCITY:
            r.expect = "duration"
        elif k == DURATION:
            r.expect = "body"
            if r.pos == r.hit_pos and len(r.roles_here) >= self.hit_voices:
                r.hit_done = True
        elif k in (EOS, PAD):
            r.expect = "done"

    def _given(self, r: _Row) -> tuple[int, tuple[int, ...]] | None:
        """The next group of given notes in the row's bar, if any is left."""
        groups = self.kept[r.bar - 1] if 0 < r.bar <= self.bars else ()
        return groups[r.kept] if r.kept < len(groups) else None

    def _signature(self, r: _Row) -> tuple:
        if r.forced:
            return ("forced", r.forced[0])
        if r.due and r.expect in ("program", "body"):
            return ("due", r.due[0], frozenset(r.roles_here))
        if r.expect == "bar":
            return ("bar", r.bar < self.bars)
        if r.expect == "controls":
            return ("controls", r.pending[0])
        if r.expect == "body":
            may_end = self.required <= r.roles_bar
            more = r.bar < self.bars
            given = self._given(r)
            up_to = None if given is None else given[0]
            return ("body", r.pos, frozenset(r.roles_here), r.hit_pos, r.hit_done, may_end, more,
                    up_to)  # fmt: skip
        return (r.expect,)

    def allowed(self, r: _Row) -> tuple[torch.Tensor, int | None]:
        """Tokens allowed in state ``r`` (V,) bool, and the token when only one is."""
        key = self._signature(r)
        if key not in self._masks:
            allow = self._allowed(r)
            only = allow.nonzero().flatten()
            self._masks[key] = (allow, int(only[0]) if len(only) == 1 else None)
        return self._masks[key]

    def _allowed(self, r: _Row) -> torch.Tensor:
        tok = self.tok
        allow = torch.zeros(len(tok), dtype=torch.bool)
        if r.forced:
            allow[r.forced[0]] = True
        elif r.due and r.expect in ("program", "body"):
            # The given note next, or first a voice of the row's own in a role between.
            last = max(r.roles_here, default=-1)
            between = (self.pos_value > last) & (self.pos_value < int(tok.value[r.due[0]]))
            allow |= self.mask_program & between
            allow[r.due[0]] = True  # a given chord repeats its role
        elif r.expect == "done":
            allow[tok.pad_id] = True
        elif r.expect == "bar":
            allow[tok.bar_id if r.bar < self.bars else tok.eos_id] = True
        elif r.expect == "timesig":
            allow[self.timesig] = True
        elif r.expect == "controls":
            allow[r.pending[0]] = True
        elif r.expect == "program":
            allow |= self.mask_program
        elif r.expect in ("pitch", "velocity", "duration"):
            allow |= self.mask[
                {"pitch": PITCH, "velocity": VELOCITY, "duration": DURATION}[r.expect]
            ]
        else:  # body: a new onset group, another note here, or the end of the bar
            at_hit = r.pos >= 0 and r.pos == r.hit_pos
            if at_hit and len(r.roles_here) < self.hit_voices:
                allow |= self.mask_program  # the hit needs more voices at this position
                for role in r.roles_here:
                    allow[tok.vocab[f"Program_{role}"]] = False
                if self.ordered and r.roles_here:  # in ascending order where one is left
                    higher = allow & ~(self.any_program & (self.pos_value <= max(r.roles_here)))
                    allow = higher if higher.any() else allow
                return allow
            last = self.positions - 1 if r.hit_done else r.hit_pos
            given = self._given(r)
            if given is not None:  # not past the next given notes
                last = min(last, given[0])
            allow |= self.mask_position & (self.pos_value > r.pos) & (self.pos_value <= last)
            if r.pos >= 0:
                allow |= self.mask_program
                for role in r.roles_here:  # one onset per role and position keeps voices apart
                    allow[tok.vocab[f"Program_{role}"]] = False
                if self.ordered and r.roles_here:
                    allow &= ~(self.any_program & (self.pos_value <= max(r.roles_here)))
            if r.hit_done and self.required <= r.roles_bar and given is None:
                allow[tok.bar_id if r.bar < self.bars else tok.eos_id] = True
        return allow

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # Catch up on the tokens appended since the last call (one per step when decoding).
        new = input_ids[:, self.seen :].tolist()
        self.seen = input_ids.shape[1]
        for r, toks in zip(self.rows, new, strict=True):
            for t in toks:
                self.advance(r, t)
        return self.apply(scores, self.rows)

    def apply(self, scores: torch.FloatTensor, states: list[_Row]) -> torch.FloatTensor:
        """Mask ``scores`` (N, V) row by row for ``states`` (N)."""
        allow = torch.stack([self.allowed(r)[0] for r in states]).to(scores.device)
        return scores.masked_fill(~allow, float("-inf"))


class KeyBias(LogitsProcessor):
    """Lower the logits of pitches outside the key's scale by ``penalty``; ``degrees``
    (semitones above the tonic) name another scale on the key's tonic."""

    def __init__(
        self, tok: ScoreTokenizer, key: tuple[int, str], penalty: float = 3.0,
        degrees: tuple[int, ...] | None = None,
    ):  # fmt: skip
        tonic, mode = key
        degrees = degrees or (_MINOR if mode == "minor" else _MAJOR)
        scale = {(tonic + d) % 12 for d in degrees}
        out = (tok.kind == PITCH) & ~np.isin(tok.value % 12, list(scale))
        self.bias = torch.from_numpy(np.where(out, -penalty, 0.0).astype(np.float32))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores + self.bias.to(scores.device, scores.dtype)


class PitchTilt(LogitsProcessor):
    """Move the pitch distribution: ``per_octave`` added to a pitch's logit for every octave
    above middle C (subtracted below), and ``well`` times the squared distance in octaves from
    ``center`` subtracted. The tilt is an exponential tilt: every voice moves the same way
    without the texture's range being squeezed; the well draws the voices towards one pitch,
    for a register in the middle whatever the style's own range."""

    def __init__(
        self, tok: ScoreTokenizer, per_octave: float, well: float = 0.0, center: float = 69.0
    ):
        octaves = (tok.value - 60) / 12.0
        bias = per_octave * octaves - well * ((tok.value - center) / 12.0) ** 2
        self.bias = torch.from_numpy(np.where(tok.kind == PITCH, bias, 0.0).astype(np.float32))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores + self.bias.to(scores.device, scores.dtype)


class Against(LogitsProcessor):
    """Lower by ``penalty`` the logits of pitches dissonant (composer.music.harmony.CONSONANT)
    with a note of ``sounding`` (per bar: (start, end, pitch) in steps from the bar line) that
    sounds where the row writes its pitch: the kept parts an edit writes against, heard at each
    onset even where the corpus's order lists them after the note written. Given notes are
    left as they are. Reads each row's bar and position from ``grammar``, so it comes after it."""

    def __init__(self, tok: ScoreTokenizer, sounding: tuple, penalty: float, grammar: ScoreGrammar):
        self.grammar, self.sounding, self.penalty = grammar, sounding, penalty
        self.pc = torch.from_numpy(np.where(tok.kind == PITCH, tok.value % 12, -1))
        self._masks: dict[frozenset[int], torch.Tensor] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.apply(scores, self.grammar.rows)

    def apply(self, scores: torch.FloatTensor, states: list[_Row]) -> torch.FloatTensor:
        """``scores`` (N, V) for grammar ``states`` (N)."""
        for i, r in enumerate(states):
            if r.expect != "pitch" or r.forced or not 0 < r.bar <= len(self.sounding):
                continue
            pcs = frozenset(p % 12 for a, b, p in self.sounding[r.bar - 1] if a <= r.pos < b)
            if pcs:
                scores[i] = scores[i] - self.penalty * self._mask(pcs).to(scores.device)
        return scores

    def _mask(self, pcs: frozenset[int]) -> torch.Tensor:
        """(V,) 1.0 at the pitches dissonant with one of ``pcs``."""
        if pcs not in self._masks:
            bad = [pc for pc in range(12) if any((pc - q) % 12 not in CONSONANT for q in pcs)]
            self._masks[pcs] = torch.isin(self.pc, torch.tensor(bad)).float()
        return self._masks[pcs]


class Cadence(LogitsProcessor):
    """Close in the key: in the last bar, pitches from the tonic triad only, the bass on the
    tonic. Reads the bar and voice of each row from ``grammar``, so it comes after it."""

    def __init__(self, tok: ScoreTokenizer, key: tuple[int, str], grammar: ScoreGrammar):
        tonic, mode = key
        triad = {tonic % 12, (tonic + (3 if mode == "minor" else 4)) % 12, (tonic + 7) % 12}
        is_pitch = tok.kind == PITCH
        self.grammar = grammar
        self.bass = len(tok.spec.roles) - 1
        self.off_triad = torch.from_numpy(is_pitch & ~np.isin(tok.value % 12, list(triad)))
        self.off_tonic = torch.from_numpy(is_pitch & (tok.value % 12 != tonic % 12))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.apply(scores, self.grammar.rows)

    def apply(self, scores: torch.FloatTensor, states: list[_Row]) -> torch.FloatTensor:
        """Ban off-cadence pitches in ``scores`` (N, V) for grammar ``states`` (N)."""
        g = self.grammar
        for i, r in enumerate(states):
            if r.bar == g.bars and r.expect == "pitch" and not r.forced:
                banned = self.off_tonic if r.role == self.bass else self.off_triad
                scores[i] = scores[i].masked_fill(banned.to(scores.device), float("-inf"))
        return scores
