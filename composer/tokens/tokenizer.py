"""ScoreTokenizer: miditok REMI with voice roles as programs, plus composer's control tokens.

A piece is one token stream::

    BOS Style_s Key_k
    Bar TimeSig_n/d [Section_start] Intensity_i [Hit_b]
        (Position (Program Pitch Velocity Duration)+)*
    Bar ...
    EOS

Programs are voice roles (0 melody, 1-4 inner voices, 5 bass), so a stream decodes to one track
per role. Controls are computed from the REMI stream itself (onsets, voices and velocities per
bar), the same way for the corpus and for generated music, so adherence is measured exactly as
the model was taught.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import symusic
from miditok import REMI, TokenizerConfig

from composer.errors import ComposerError
from composer.music.keys import MAJOR_KEYS, MINOR_KEYS, key_name
from composer.outputs import atomic_write_text
from composer.paths import TOKENIZERS
from composer.tokens.spec import TokenizerSpec
from composer.types import BarControls

FORMAT = "composer-tokenizer/1"
HEADER = 3  # BOS Style Key: every sequence starts with them

# Token kinds (values of ScoreTokenizer.kind).
PAD, BOS, EOS, STYLE, KEY, BAR, TIMESIG, SECTION, INTENSITY, HIT = range(10)
POSITION, PROGRAM, PITCH, VELOCITY, DURATION, OTHER = range(10, 16)
_PREFIX_KIND = {
    "PAD": PAD, "BOS": BOS, "EOS": EOS, "Style": STYLE, "Key": KEY, "Bar": BAR,
    "TimeSig": TIMESIG, "Section": SECTION, "Intensity": INTENSITY, "Hit": HIT,
    "Position": POSITION, "Program": PROGRAM, "Pitch": PITCH, "Velocity": VELOCITY,
    "Duration": DURATION,
}  # fmt: skip
CONTROL_KINDS = (STYLE, KEY, SECTION, INTENSITY, HIT)
# The velocity bin that unmarked notes (MIDI velocity 80) fall into: intensity is relative to it.
_PLAIN_VELOCITY = 95.0


class ScoreTokenizer:
    """Encode symusic scores with their controls to token ids, and ids back to scores."""

    def __init__(self, spec: TokenizerSpec | None = None):
        self.spec = spec or TokenizerSpec()
        s = self.spec
        specials = [t.removesuffix("_None") for t in s.control_tokens()]
        self.remi = REMI(
            TokenizerConfig(
                pitch_range=s.pitch_range,
                beat_res={(a, b): r for a, b, r in s.beat_res},
                num_velocities=s.num_velocities,
                use_velocities=True,
                use_chords=False,
                use_rests=False,
                use_tempos=False,
                use_time_signatures=True,
                time_signature_range={d: list(n) for d, n in s.meters},
                use_programs=True,
                programs=list(range(len(s.roles))),
                one_token_stream_for_programs=True,
                use_pitchdrum_tokens=False,
                special_tokens=specials,
            )
        )
        self.vocab: dict[str, int] = dict(self.remi.vocab)
        self.tokens: list[str] = [""] * len(self.vocab)
        for tok, i in self.vocab.items():
            self.tokens[i] = tok
        n = len(self.tokens)
        # Per-id lookup tables for the grammar and for controls: kind and integer value.
        self.kind = np.full(n, OTHER, dtype=np.int8)
        self.value = np.zeros(n, dtype=np.int32)
        self.beats = np.zeros(n, dtype=np.float32)  # TimeSig: quarter notes per bar
        self.ticks = np.zeros(n, dtype=np.int32)  # Duration: length in positions
        self.steps_per_beat = max(r for _, _, r in s.beat_res)
        for i, tok in enumerate(self.tokens):
            prefix, _, val = tok.partition("_")
            self.kind[i] = _PREFIX_KIND.get(prefix, OTHER)
            k = self.kind[i]
            if k in (POSITION, PROGRAM, PITCH, VELOCITY, INTENSITY, HIT):
                self.value[i] = int(val)
            elif k == STYLE:
                self.value[i] = s.styles.index(val)
            elif k == KEY:
                self.value[i] = (MAJOR_KEYS + MINOR_KEYS).index(val)
            elif k == TIMESIG:
                num, den = (int(x) for x in val.split("/"))
                self.value[i] = num * 100 + den
                self.beats[i] = num * 4 / den
            elif k == DURATION:
                beat, pos, res = (int(x) for x in val.split("."))
                self.ticks[i] = beat * self.steps_per_beat + pos * self.steps_per_beat // res
        self.pad_id, self.bos_id, self.eos_id = (
            self.vocab[t] for t in ("PAD_None", "BOS_None", "EOS_None")
        )
        self.bar_id = self.vocab["Bar_None"]
        self.section_id = self.vocab["Section_start"]
        self._shift = self._transposition_tables()

    def __len__(self) -> int:
        return len(self.tokens)

    # --- identity ---------------------------------------------------------------------------

    @property
    def vocab_hash(self) -> str:
        """A short hash of the vocabulary in id order: a checkpoint records it."""
        return hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write the spec and the vocabulary hash as JSON (the vocabulary is rebuilt on load)."""
        data = {
            "format": FORMAT,
            "spec": dataclasses.asdict(self.spec),
            "vocab_size": len(self),
            "vocab_hash": self.vocab_hash,
        }
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ScoreTokenizer:
        """Rebuild a saved tokenizer; fail with one line if it no longer matches its file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            raw = data["spec"]
        except (OSError, ValueError, KeyError) as e:
            raise ComposerError(path, f"not a composer tokenizer file ({e})") from None
        fields = {f.name for f in dataclasses.fields(TokenizerSpec)}
        raw = {k: _tuples(v) for k, v in raw.items() if k in fields}
        raw["extra"] = data["spec"].get("extra", {})
        tok = cls(TokenizerSpec(**raw))
        if tok.vocab_hash != data.get("vocab_hash"):
            raise ComposerError(
                path,
                "vocabulary differs from the one saved (miditok version "
                "or spec changed); retrain or use the matching tokenizer",
            )
        return tok

    @classmethod
    def named(cls, name: str) -> ScoreTokenizer:
        """A tokenizer shipped under tokenizers/NAME.json."""
        return cls.load(TOKENIZERS / f"{name}.json")

    # --- encoding ---------------------------------------------------------------------------

    def encode(
        self,
        score: symusic.Score,
        style: str,
        key: tuple[int, str],
        section_ticks: list[int] = (),
    ) -> list[int]:
        """Token ids of ``score`` (tracks' programs are role ids) with its controls."""
        seq = self.remi.encode(score)
        if isinstance(seq, list):  # one stream for all programs: miditok returns one sequence
            seq = seq[0]
        body = list(seq.ids)
        bar_starts = self.bar_start_ticks(body, score.ticks_per_quarter)
        sections = {0}
        for t in section_ticks:
            b = int(np.searchsorted(bar_starts, t + score.ticks_per_quarter // 8, "right")) - 1
            sections.add(max(b, 0))
        controls = self.measure_controls(body, n_roles_hint=len(score.tracks))
        controls = [dataclasses.replace(c, section=i in sections) for i, c in enumerate(controls)]
        return self.header(style, key) + self.insert_controls(body, controls) + [self.eos_id]

    def fit_meters(self, score: symusic.Score) -> list[str]:
        """Rewrite each time signature the vocabulary lacks as an equal-length one it has
        (8/8 -> 4/4, 6/16 -> 3/8), in place, so bar lines stay where they are; returns the
        rewrites made ("8/8->4/4"). ValueError names a meter no rewrite can express.

        miditok would otherwise replace an unknown meter silently and shift every bar after it.
        """
        known = {(n, d) for d, nums in self.spec.meters for n in nums}
        done = []
        for ts in score.time_signatures:
            num, den = ts.numerator, ts.denominator
            if (num, den) in known:
                continue
            # Nearest denominators first: 10/8 prefers 5/4 over 5/2's neighbours.
            for d in sorted({d for d, _ in self.spec.meters}, key=lambda d: abs(d - den)):
                n, rest = divmod(num * d, den)
                if rest == 0 and (n, d) in known:
                    done.append(f"{num}/{den}->{n}/{d}")
                    ts.numerator, ts.denominator = n, d
                    break
            else:
                valid = ", ".join(f"{n}/{d}" for n, d in sorted(known, key=lambda m: m[::-1]))
                raise ValueError(f"meter {num}/{den} is not in the vocabulary ({valid})")
        return done

    def header(self, style: str, key: tuple[int, str]) -> list[int]:
        """BOS Style Key: the tokens every sequence (and every training window) starts with."""
        if style not in self.spec.styles:
            raise ValueError(
                f"unknown style {style!r}; valid styles: " + ", ".join(self.spec.styles)
            )
        return [self.bos_id, self.vocab[f"Style_{style}"],
                self.vocab[f"Key_{key_name(*key)}"]]  # fmt: skip

    def read_header(self, ids) -> tuple[str, tuple[int, str]]:
        """The style and key of a stream's header (BOS Style Key)."""
        k = int(self.value[ids[2]])  # an index into MAJOR_KEYS + MINOR_KEYS
        return self.spec.styles[int(self.value[ids[1]])], (k % 12, "minor" if k >= 12 else "major")

    def control_ids(self, c: BarControls) -> list[int]:
        """The control tokens that follow a bar's TimeSig."""
        out = [self.section_id] if c.section else []
        out.append(self.vocab[f"Intensity_{c.intensity}"])
        if c.hit is not None:
            out.append(self.vocab[f"Hit_{c.hit}"])
        return out

    def insert_controls(self, body: list[int], controls: list[BarControls]) -> list[int]:
        """Put each bar's control tokens right after its TimeSig token."""
        out: list[int] = []
        bar = -1
        for i in body:
            out.append(i)
            if i == self.bar_id:
                bar += 1
            elif self.kind[i] == TIMESIG and 0 <= bar < len(controls):
                out.extend(self.control_ids(controls[bar]))
        return out

    # --- measuring --------------------------------------------------------------------------

    def bar_start_ticks(self, ids: list[int], tpq: int) -> np.ndarray:
        """Start tick of every bar in a stream (from its TimeSig tokens)."""
        starts, t, length = [], 0, None
        for i in ids:
            if i == self.bar_id:
                if length is not None:
                    t += length
                starts.append(t)
            elif self.kind[i] == TIMESIG:
                length = round(float(self.beats[i]) * tpq)
        return np.asarray(starts, dtype=np.int64)

    def notes(self, ids) -> tuple[list[tuple[int, int, int, int]], int]:
        """(onset, role, pitch, duration) of every note of ``ids``, onsets and durations in
        steps from its first bar line, and the length of its bars in steps."""
        out, bar_start, bar_len, pos, role, started = [], 0, 0, 0, 0, False
        for i in ids:
            k = self.kind[i]
            if i == self.bar_id:
                bar_start += bar_len if started else 0
                started, pos = True, 0
            elif k == TIMESIG:
                bar_len = round(float(self.beats[i]) * self.steps_per_beat)
            elif k == POSITION:
                pos = int(self.value[i])
            elif k == PROGRAM:
                role = int(self.value[i])
            elif k == PITCH:
                out.append([bar_start + pos, role, int(self.value[i]), 1])
            elif k == DURATION and out:
                out[-1][3] = max(1, int(self.ticks[i]))
        return [tuple(n) for n in out], bar_start + bar_len

    def bars(self, ids: list[int]) -> list[dict]:
        """Per bar: meter, onsets (position, role, velocity) and the control tokens it carries."""
        out: list[dict] = []
        pos = role = 0
        for i in ids:
            k = self.kind[i]
            if i == self.bar_id:
                out.append(
                    {
                        "meter": None,
                        "beats": 4.0,
                        "onsets": [],
                        "intensity": None,
                        "hit": None,
                        "section": False,
                    }
                )
            elif not out:
                continue
            elif k == TIMESIG:
                out[-1]["meter"] = (int(self.value[i]) // 100, int(self.value[i]) % 100)
                out[-1]["beats"] = float(self.beats[i])
            elif k == POSITION:
                pos = int(self.value[i])
            elif k == PROGRAM:
                role = int(self.value[i])
            elif k == VELOCITY:
                out[-1]["onsets"].append((pos, role, int(self.value[i])))
            elif k == INTENSITY:
                out[-1]["intensity"] = int(self.value[i])
            elif k == HIT:
                out[-1]["hit"] = int(self.value[i])
            elif k == SECTION:
                out[-1]["section"] = True
        return out

    def measure_controls(
        self, ids: list[int], n_roles_hint: int | None = None
    ) -> list[BarControls]:
        """Intensity and hit accents of each bar, measured from the notes in ``ids``."""
        bars = self.bars(ids)
        roles_in_piece = n_roles_hint or len({r for b in bars for _, r, _ in b["onsets"]}) or 1
        spb = self.steps_per_beat
        out: list[BarControls] = []
        last_onset = 0  # absolute position of the previous onset (the opening is no accent)
        offset = 0  # absolute position of this bar's start
        for b in bars:
            onsets = b["onsets"]
            meter = b["meter"] or (4, 4)
            quarters = b["beats"]
            voices = len({r for _, r, _ in onsets}) or 1
            vel = np.mean([v for _, _, v in onsets]) if onsets else _PLAIN_VELOCITY
            density = len(onsets) / (quarters * voices) * (vel / _PLAIN_VELOCITY)
            level = int(np.searchsorted(self.spec.intensity_thresholds, density, "right"))
            # A hit: an on-beat attack by most voices (or, for one voice, any attack) after at
            # least two beats (three for one voice) with no onsets: a held chord or a fermata,
            # then everyone at once.
            hit = None
            need = 1 if roles_in_piece == 1 else max(2, -(-2 * roles_in_piece // 3))
            gap = (3 if roles_in_piece == 1 else 2) * spb
            by_pos: dict[int, set[int]] = {}
            for p, r, _ in onsets:
                by_pos.setdefault(p, set()).add(r)
            for p in sorted(by_pos):
                absolute = offset + p
                if (
                    hit is None
                    and p % spb == 0
                    and p // spb < self.spec.max_hit_beats
                    and len(by_pos[p]) >= need
                    and absolute - last_onset >= gap
                ):
                    hit = p // spb
                last_onset = absolute
            out.append(BarControls(intensity=level, hit=hit))
            offset += round(meter[0] * spb)
        return out

    # --- decoding and transposition ---------------------------------------------------------

    def strip_controls(self, ids: list[int]) -> list[int]:
        """The REMI stream alone (controls, BOS, EOS and PAD removed)."""
        drop = np.isin(self.kind, (PAD, BOS, EOS) + CONTROL_KINDS)
        return [i for i in ids if not drop[i]]

    def decode(self, ids: list[int]) -> symusic.Score:
        """A symusic score with one track per role, named after it."""
        score = self.remi.decode(self.strip_controls(ids))
        for track in score.tracks:
            if 0 <= track.program < len(self.spec.roles):
                track.name = self.spec.roles[track.program]
        return score

    def _transposition_tables(self) -> dict[int, np.ndarray]:
        """For each shift in -12..12, an id -> id table (-1 where a pitch leaves the range)."""
        tables = {}
        keys = MAJOR_KEYS + MINOR_KEYS
        for k in range(-12, 13):
            table = np.arange(len(self.tokens), dtype=np.int64)
            for i in range(len(self.tokens)):
                if self.kind[i] == PITCH:
                    table[i] = self.vocab.get(f"Pitch_{int(self.value[i]) + k}", -1)
                elif self.kind[i] == KEY:
                    v = int(self.value[i])
                    table[i] = self.vocab[f"Key_{keys[(v // 12) * 12 + (v % 12 + k) % 12]}"]
            tables[k] = table
        return tables

    def transpose(self, ids: np.ndarray, shift: int) -> np.ndarray | None:
        """``ids`` transposed by ``shift`` semitones (key token too), or None if out of range."""
        out = self._shift[shift][ids]
        return None if (out < 0).any() else out

    def pitch_span(self, ids: np.ndarray) -> tuple[int, int]:
        """Lowest and highest pitch in ``ids``."""
        p = self.value[ids][self.kind[ids] == PITCH]
        return (int(p.min()), int(p.max())) if len(p) else (60, 60)


def _tuples(v):
    """JSON lists back to the tuples a frozen spec holds."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v
