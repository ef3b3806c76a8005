"""Instructions in plain words: a MiniLM sentence embedding as prefix vectors, and a reader.

The instruct adapter is an adapter folder (``<model>/adapters/instruct/``, see
composer.model.adapters) with two more files:

- ``prefix.safetensors``: the PrefixEncoder, which maps the instruction's all-MiniLM-L6-v2
  embedding (384,) to ``prefix_len`` vectors in the decoder's input space. They sit before the
  header, where the decoder attends to them like tokens; they were trained together with the
  adapter's LoRA (composer.train.instruct), so free text that no control token covers still
  reaches the notes.
- ``anchors.txt``: instructions written as training writes them, from measured training
  windows. The prefix encoder only knows the region of embedding space its training
  instructions fill; free text ("dreamy and floating") falls outside it, where the encoder's
  output means nothing in particular. So a text's embedding is first replaced by a blend of
  its nearest anchors' embeddings (a kernel average over the ``anchor_k`` most similar,
  weighted by softmax(cosine / temperature)): a training-like embedding that states what the
  nearest training instructions state.
- ``reader.npz``: the instruction reader (composer.model.reader): cue words, then a logistic
  regression from the MiniLM embedding of each clause of the instruction to the attribute
  value it states (tempo, mode, density, meter, register) or to none. The plan uses what it
  reads to set the controls a token can force (key mode, meter, intensity) and the tempo,
  which is not in the notes at all.

``instruct.json`` holds the InstructConfig and the density and register thresholds measured
on the training windows, so an evaluation classifies music the way training did.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from composer.errors import ComposerError
from composer.model.adapters import INSTRUCT, AdapterConfig, adapter_path, cached_adapter
from composer.model.checkpoint import Checkpoint
from composer.model.decode import Prefix
from composer.model.reader import Reader, embed
from composer.music.attributes import Attributes, Thresholds
from composer.music.words import TEMPO_CLASS_BPM


@dataclass(frozen=True)
class InstructConfig:
    """Prefix length, the sentence embedding's size, and the LoRA shape trained with it."""

    prefix_len: int = 4
    embed_dim: int = 384  # all-MiniLM-L6-v2
    lora: AdapterConfig = AdapterConfig()
    anchors: int = 1000  # training-phrasing instructions a text's embedding is blended from
    anchor_k: int = 16
    anchor_temperature: float = 0.02  # cosine units: a text's nearest anchors lie ~0.4-0.6 from it
    # Classifier-free guidance away from the average instruction (composer.model.generate.
    # Prefix); 3 is audiocraft's MusicGen default for its text conditions.
    guidance: float = 3.0

    @classmethod
    def from_dict(cls, raw: dict) -> InstructConfig:
        lora = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["lora"].items()}
        return cls(**{**raw, "lora": AdapterConfig(**lora)})


class PrefixEncoder(nn.Module):
    """Sentence embedding (B, 384) -> prefix vectors (B, prefix_len, H)."""

    def __init__(self, config: InstructConfig, hidden: int):
        super().__init__()
        self.prefix_len, self.hidden = config.prefix_len, hidden
        self.net = nn.Sequential(
            nn.Linear(config.embed_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, config.prefix_len * hidden),
        )
        # Start near the scale of token embeddings (initializer_range 0.02).
        nn.init.normal_(self.net[2].weight, std=0.02)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding).view(len(embedding), self.prefix_len, self.hidden)


def anchored(embedding: np.ndarray, anchors: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """(384,) -> (384,): the unit-length softmax(cosine / temperature) blend of the ``k``
    rows of ``anchors`` (N, 384) most similar to ``embedding`` (all unit length)."""
    sims = anchors @ embedding  # (N,)
    top = np.argsort(-sims, kind="stable")[:k]
    w = np.exp((sims[top] - sims[top].max()) / temperature)
    blend = (w / w.sum()) @ anchors[top]
    return (blend / np.linalg.norm(blend)).astype(np.float32)


@dataclass
class Instruct:
    """A loaded instruct adapter: the merged checkpoint, the prefix encoder, the anchors'
    embeddings (N, 384) and the reader."""

    checkpoint: Checkpoint
    config: InstructConfig
    encoder: PrefixEncoder
    anchors: np.ndarray
    reader: Reader
    thresholds: Thresholds
    info: dict

    def vectors(self, text: str) -> torch.Tensor:
        """The instruction's prefix vectors (prefix_len, H), from its anchored embedding."""
        c = self.config
        e = anchored(embed([text])[0], self.anchors, c.anchor_k, c.anchor_temperature)
        with torch.no_grad():
            return self.encoder(torch.from_numpy(e[None])).squeeze(0).float()

    @functools.cached_property
    def neutral(self) -> torch.Tensor:
        """The average instruction's prefix vectors (prefix_len, H): the anchors' mean."""
        with torch.no_grad():
            return self.encoder(torch.from_numpy(self.anchors)).mean(0).float()

    def prefix(self, text: str) -> Prefix:
        """What the decoder is conditioned on for ``text``: its vectors, guided by the
        config's scale away from the average instruction's."""
        return Prefix(self.vectors(text), self.neutral, self.config.guidance)


def save_instruct_files(
    folder: Path, config: InstructConfig, encoder: PrefixEncoder, anchors: list[str],
    reader: Reader, thresholds: Thresholds, info: dict,
) -> None:  # fmt: skip
    """Write the files an instruct adapter adds to a plain adapter folder."""
    from safetensors.torch import save_file

    # bf16 halves the encoder (360k parameters) so that the adapter stays under 4 MB.
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, folder / "prefix.safetensors")
    (folder / "anchors.txt").write_text("\n".join(anchors) + "\n")
    reader.save(folder / "reader.npz")
    meta = {
        "config": dataclasses.asdict(config),
        "thresholds": dataclasses.asdict(thresholds),
        "info": info,
    }
    (folder / "instruct.json").write_text(json.dumps(meta, indent=2) + "\n")


_LOADED: dict[str, Instruct] = {}


def load_instruct(base: Checkpoint, model: str | Path) -> Instruct:
    """The instruct adapter of checkpoint ``model`` (``base``, loaded), loaded once per process."""
    from safetensors.torch import load_file

    folder = adapter_path(model, INSTRUCT)
    key = str(folder.resolve())
    if key in _LOADED:
        return _LOADED[key]
    if not (folder / "instruct.json").exists():
        raise ComposerError(
            folder, "no instruct adapter here (train one with 'composer train --instruct')"
        )
    try:
        meta = json.loads((folder / "instruct.json").read_text())
        config = InstructConfig.from_dict(meta["config"])
        th = Thresholds(**{k: tuple(v) for k, v in meta["thresholds"].items()})
        encoder = PrefixEncoder(config, base.model.config.hidden_size)
        state = {k: v.float() for k, v in load_file(folder / "prefix.safetensors").items()}
        encoder.load_state_dict(state)
        anchors = (folder / "anchors.txt").read_text().splitlines()
        if not anchors:
            raise ValueError("anchors.txt is empty")
        reader = Reader.load(folder / "reader.npz")
    except Exception as e:  # json, safetensors, numpy and torch each raise their own types
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ComposerError(folder, f"corrupt instruct adapter ({msg})") from None
    encoder.eval()
    merged = cached_adapter(base, model, INSTRUCT)
    _LOADED[key] = Instruct(
        merged, config, encoder, embed(anchors), reader, th, meta.get("info", {})
    )
    return _LOADED[key]


# Controls for what the reader heard. Meter classes as their plainest meters. Density is
# notes per quarter note over all voices, so it is set by the number of voices as much as by
# each voice's bar intensity. Register moves the pitch distribution (constraints.PitchTilt):
# a tilt down or up, a well around A4 for the middle. Calibrated on 10 eight-bar dev requests
# per setting (five styles, three meters, seeds 1000+; not the evaluation's instructions):
# sparse as one voice at intensity 1/0 landed sparse in 10 of 10, medium as one voice at 2 in
# 10 (two voices at 1: 2), dense as four voices at 2/3 in 9; a tilt of -2 per octave landed
# low in 9, +2 high in 10, a well of 2 middle in 9 (no bias at all: 3).
METERS = {"duple": (4, 4), "triple": (3, 4), "compound": (6, 8)}
DENSITY = {"sparse": ((0,), (1, 0)), "medium": ((0,), (2,)), "dense": ((0, 1, 2, 5), (2, 3))}
REGISTER = {"low": (-2.0, 0.0), "middle": (0.0, 2.0), "high": (2.0, 0.0)}  # (tilt, well)


@dataclass(frozen=True)
class InstructControls:
    """What the plan sets from an instruction: the request's controls and the tempo."""

    key: tuple[int, str]
    meter: tuple[int, int]
    tempo: float
    intensity: tuple[int, ...]
    roles: tuple[int, ...] | None = None  # None: the style's own choice of voices
    register_tilt: float = 0.0
    register_well: float = 0.0


def controls_for(
    reading: Attributes, *, tonic: int = 0, key: tuple[int, str] | None = None,
    meter: tuple[int, int] | None = None, tempo: float | None = None,
    intensity: tuple[int, ...] | None = None,
) -> InstructControls:  # fmt: skip
    """The controls for what the reader heard; values given explicitly (flags, or a plan's
    explicit facts) win over the reading. With no key given, the key is ``tonic`` in the mode
    heard (major when none is)."""
    roles = None
    if reading.density and intensity is None:
        roles, intensity = DENSITY[reading.density]
    return InstructControls(
        key=key or (tonic, reading.mode or "major"),
        meter=meter or (METERS[reading.meter] if reading.meter else (4, 4)),
        tempo=tempo or (TEMPO_CLASS_BPM[reading.tempo] if reading.tempo else 100.0),
        intensity=tuple(intensity or (1, 2)),
        roles=roles,
        register_tilt=REGISTER[reading.register][0] if reading.register else 0.0,
        register_well=REGISTER[reading.register][1] if reading.register else 0.0,
    )


@lru_cache(maxsize=4)
def load_reader(model: str | Path) -> Reader:
    """The instruction reader of checkpoint ``model``'s instruct adapter (no weights merged)."""
    path = adapter_path(model, INSTRUCT) / "reader.npz"
    if not path.exists():
        raise ComposerError(
            path.parent, "no instruct adapter here (train one with 'composer train --instruct')"
        )
    try:
        return Reader.load(path)
    except Exception as e:  # numpy raises several types for a damaged archive
        raise ComposerError(path, f"corrupt instruction reader ({e})") from None


def read_instruction(
    text: str, model: str | Path, **explicit
) -> tuple[Attributes, dict[str, float], InstructControls]:
    """What the instruct adapter's reader of ``model`` finds in ``text``: the attributes, each
    reading's probability, and ``controls_for`` them with the ``explicit`` values kept."""
    reading, confidence = load_reader(str(model)).read(text)
    return reading, confidence, controls_for(reading, **explicit)
