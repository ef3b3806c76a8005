"""The dataclasses handed from one pipeline stage to the next.

Each has a JSON round trip (``to_json`` / ``from_json``) so any stage can be re-run from the
previous stage's file. Fields that are not data (keyframe images) stay out of the JSON.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from PIL import Image

if TYPE_CHECKING:
    import symusic

    from composer.tokens import ScoreTokenizer


class _Json:
    """Mixin: dataclass <-> JSON, recursing into nested dataclasses and lists of them."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.metadata.get("json", True):
                out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in data and f.metadata.get("json", True):
                kwargs[f.name] = _build(hints[f.name], data[f.name])
        return cls(**kwargs)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write as JSON atomically (temporary name, then rename)."""
        from composer.outputs import atomic_write_text

        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls.from_json(Path(path).read_text())


def _plain(value: Any) -> Any:
    if isinstance(value, _Json):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _build(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if isinstance(hint, type) and issubclass(hint, _Json):
        return hint.from_dict(value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_build(item, v) for v in value]
    if hint is float and value is not None:
        return float(value)
    return value


# --- Stage 1: analyse -------------------------------------------------------------------------


@dataclass
class Cut(_Json):
    """A scene change. ``kind`` tells a hard cut from a gradual fade or dissolve."""

    time: float  # seconds from the first frame
    kind: Literal["cut", "fade"]
    strength: float  # 0..1
    # For fades: "in" (from black), "out" (to black) or "cross" (a dissolve); None for cuts.
    direction: str | None = None
    duration: float = 0.0  # seconds the transition spans (0 for a hard cut)


@dataclass
class Keyframe(_Json):
    """A representative frame of a scene. The image stays in memory only."""

    time: float
    scene: int
    image: Image.Image | None = field(
        default=None, repr=False, compare=False, metadata={"json": False}
    )


@dataclass
class MotionCurve(_Json):
    """Motion energy (0..1, optical-flow magnitude on a fixed scale) at analysis times."""

    times: list[float]
    energy: list[float]


@dataclass
class ColourCurves(_Json):
    """Per-sample colour statistics, each in 0..1 (warmth: 0 cool/blue, 1 warm/red;
    contrast: the luma's standard deviation, 1 for half black and half white)."""

    times: list[float]
    brightness: list[float]
    saturation: list[float]
    warmth: list[float]
    contrast: list[float] = field(default_factory=list)


@dataclass
class Scene(_Json):
    start: float
    end: float


@dataclass
class VideoAnalysis(_Json):
    """Everything stage 1 measures, from one decoding pass over the video."""

    path: str
    duration: float  # seconds, first frame shown to the end of the last
    fps: float  # average frame rate (frames / duration) — VFR files have no single rate
    width: int  # frame size as displayed: the coded size, turned by ``rotation``
    height: int
    pixel_aspect: float  # sample aspect ratio: display width = width * pixel_aspect
    start_time: float  # presentation time of the first frame in the file (s); times here are
    #                    relative to it
    frame_count: int
    cuts: list[Cut]
    scenes: list[Scene]
    motion: MotionCurve
    beats: list[float]
    colour: ColourCurves
    keyframes: list[Keyframe]
    variable_frame_rate: bool = False
    has_audio: bool = False
    # Degrees clockwise that players turn the coded picture (0, 90, 180, 270; a phone held upright
    # records 90). Everything measured here, keyframes included, is of the turned picture.
    rotation: int = 0

    @property
    def display_width(self) -> int:
        return round(self.width * self.pixel_aspect)

    def mean_motion(self) -> float:
        e = self.motion.energy
        return sum(e) / len(e) if e else 0.0


# --- Stage 2: describe -----------------------------------------------------------------------


@dataclass
class Mood(_Json):
    valence: float  # 0 sad/dark .. 1 happy/bright
    arousal: float  # 0 calm .. 1 excited
    words: list[str]


@dataclass
class Pacing(_Json):
    energy: float  # 0..1
    tempo_min: float  # beats per minute
    tempo_max: float


@dataclass
class Event(_Json):
    """Something the music may mark: a cut, a fade, a motion peak or a visual beat."""

    time: float
    kind: Literal["cut", "fade", "motion_peak", "visual_beat"]
    strength: float  # 0..1
    caption: str | None = None


@dataclass
class SceneNote(_Json):
    start: float
    end: float
    caption: str


@dataclass
class ReasoningStep(_Json):
    """One step of the describer's reasoning, with the evidence it used."""

    text: str
    evidence: list[str]  # e.g. "cuts_per_10s=3.4", "keyframe@12.0s"


@dataclass
class Brief(_Json):
    """Stage 2's answer: what the music should do for this video, and why."""

    mood: Mood
    pacing: Pacing
    events: list[Event]
    scenes: list[SceneNote]
    reasoning: list[ReasoningStep]
    duration: float
    describer: str  # "signal", "transformers:PATH", "openai:URL"
    fallback: str | None = None  # why the signal describer's answer replaced a model's


# --- Stage 3: plan ---------------------------------------------------------------------------


@dataclass
class Choice(_Json):
    """One planned value, where it came from ("prompt", "video" or "default") and why."""

    value: Any
    source: Literal["prompt", "video", "default"]
    why: str
    confidence: float = 1.0


@dataclass
class TempoSegment(_Json):
    start: float  # seconds
    beat: float  # beat index at ``start``
    bpm: float


@dataclass
class BarPlan(_Json):
    """One bar of the plan: when it starts and the controls the decoder is given for it."""

    index: int
    start: float  # seconds
    intensity: int  # 0..3
    hit: int | None = None  # beat of a hit accent
    section: bool = False
    cut: float | None = None  # the video cut this bar's downbeat (or hit) marks


@dataclass
class HitPoint(_Json):
    """A moment the music marks, and where it landed in the score."""

    time: float  # the video's event, seconds
    kind: str  # cut | fade | motion_peak
    bar: int
    beat: int
    score_time: float  # where the downbeat or accent is, seconds
    downbeat: bool


@dataclass
class Phrase(_Json):
    """A phrase of the form: its bars, and the earlier phrase it restates, if any."""

    start: int  # first bar
    bars: int
    label: str  # "a", "a'" (a restated with a new ending), "b", ...
    source: int | None = None  # first bar of the phrase restated; None: new material
    exact: int = 0  # bars restated note for note (the rest are the decoder's own)


@dataclass
class Section(_Json):
    """A section of the form: how it is accompanied and which parts play."""

    start: int  # first bar
    bars: int
    label: str  # "A", "B", ...
    texture: str  # composer.arrange.accompany.TEXTURES
    resting: list[int]  # the roles that rest (composer.music.roles.ROLES indices)
    why: str


@dataclass
class Form(_Json):
    """Stage 3's layout of the music: phrases that return, sections that change the sound."""

    phrases: list[Phrase]
    sections: list[Section]

    def describe(self) -> str:
        """E.g. "A[a a'] B[b a]"."""
        out = []
        for s in self.sections:
            inside = [p.label for p in self.phrases if s.start <= p.start < s.start + s.bars]
            out.append(f"{s.label}[{' '.join(inside)}]")
        return " ".join(out)


@dataclass
class Plan(_Json):
    """Stage 3's answer: the music's frame, each field with its source and reason."""

    duration: Choice  # seconds
    style: Choice  # a decoder style token
    key: Choice  # [tonic pitch class, "major" | "minor"]
    meter: Choice  # [numerator, denominator]
    tempo: Choice  # the base bpm
    instruments: Choice  # General MIDI program per role (melody first, bass last)
    drums: Choice  # bool
    mood: Choice  # the mood words
    tempo_map: list[TempoSegment]
    bars: list[BarPlan]
    hit_points: list[HitPoint]
    unplaced: list[float] = field(default_factory=list)  # strong cuts no gentle tempo reached
    seed: int = 0
    # How the music is played and spread (perform and arrange read them):
    # dynamics "soft" | "medium" | "loud" | "building" | "fading";
    # density "sparse" | "medium" | "dense" (the decoder's bar intensity follows it);
    # register "low" | "middle" | "high" (where the melody sits);
    # texture: the accompaniment's pattern ("waltz", "march", "jig", "chorale", "arpeggio",
    # "running", "held") or "free" (as the decoder wrote it).
    dynamics: Choice = field(default_factory=lambda: _unsaid("medium"))
    density: Choice = field(default_factory=lambda: _unsaid("medium"))
    register: Choice = field(default_factory=lambda: _unsaid("middle"))
    texture: Choice = field(default_factory=lambda: _unsaid("free"))
    form: Form | None = None  # phrases and sections (composer.plan.form)


def _unsaid(value: str) -> Choice:
    return Choice(value, "default", "nothing asked for another")


# --- Stage 4: retrieve -----------------------------------------------------------------------


@dataclass
class ReferencePick(_Json):
    """One reference piece the plan's search found, with its score and the score's parts."""

    id: str  # the library's piece id (a corpus path, plus "#N" for a tune of a collection)
    title: str
    by: str  # composer, or the collection where none is named
    style: str
    key: str
    meter: str
    score: float
    parts: str  # "text 0.41 + words 0.00 + attributes 0.93 (key 1.0, ...)"


@dataclass
class References(_Json):
    """Stage 4's answer: the pieces shown to the user, and how one of them primed the decoder."""

    query: str
    library: str
    picks: list[ReferencePick]
    priming: str = ""  # what priming did, or why there was none (the generation stage says)
    # The picks' library entries (composer.retrieve.library.PieceMeta), to read them again.
    pieces: list[Any] = field(default_factory=list, metadata={"json": False})


# --- Stage 5: generate ------------------------------------------------------------------------


@dataclass(frozen=True)
class BarControls:
    """The controls of one bar, as computed from music or forced from a plan."""

    intensity: int
    hit: int | None = None  # beat index of a hit accent
    section: bool = False


@dataclass(frozen=True)
class StyleContrast:
    """Guidance away from a neighbouring style: each step's log-probs are ``other + scale *
    (style - other)``, where ``other`` is the same decoder reading ``against`` as the header's
    style token instead of the requested style. It pushes the music towards what tells the
    style apart from the one it is most easily taken for (a fiddle tune from a folk song); the
    scale 1 is no guidance. It costs a second row per candidate."""

    against: str
    scale: float = 1.0

    @property
    def active(self) -> bool:
        return self.scale != 1.0


@dataclass(frozen=True)
class GenerationRequest:
    """What to write. ``controls`` holds one BarControls per bar (the plan's bar grid)."""

    style: str
    key: tuple[int, str]
    meter: tuple[int, int]
    controls: tuple[BarControls, ...]
    roles: tuple[int, ...] | None = None  # role ids to write (None: the style's texture)
    every_role_every_bar: bool = False  # each of ``roles`` plays in every bar
    temperature: float = 1.0
    top_p: float = 0.95
    key_penalty: float = 3.0
    scale: tuple[int, ...] | None = None  # degrees the key bias keeps to (None: the key's own)
    cadence: bool = True  # end on the tonic triad, the bass on the tonic
    seed: int = 0
    candidates: int = 4
    # Body tokens of whole bars (no header, no EOS) that the decoder reads before writing:
    # a reference's excerpt, already in the request's key and meter. Not part of the output.
    primer: tuple[int, ...] = ()
    # Register (constraints.PitchTilt): logits added per octave above middle C to every pitch
    # (< 0 pulls down), and the pull of a well around A4 (0: none).
    register_tilt: float = 0.0
    register_well: float = 0.0
    # Guidance away from a neighbouring style (a style adapter's, composer.model.adapters).
    contrast: StyleContrast | None = None
    # Notes written as given, per bar: (position, their Program Pitch Velocity Duration
    # tokens) in position order (constraints.ScoreGrammar). An edit's kept parts, read by the
    # voices the decoder writes around them.
    kept: tuple[tuple[tuple[int, tuple[int, ...]], ...], ...] = ()
    # Notes of kept parts the decoder's own pitches are written against, per bar: (start, end,
    # pitch), in steps from the bar line (constraints.Against); ``against_penalty`` is taken
    # from the logit of each pitch dissonant with one sounding where it is written.
    against: tuple[tuple[tuple[int, int, int], ...], ...] = ()
    against_penalty: float = 0.0

    @property
    def bars(self) -> int:
        return len(self.controls)


@dataclass
class Candidate:
    ids: list[int]
    log_likelihood: float  # mean log-probability per generated token under the raw model
    adherence: float  # 0..1: intensity, hits and key as requested
    details: dict = field(default_factory=dict)


@dataclass
class GenerationResult:
    """Stage 5's answer: the candidates decoded, the best one, and how they were made."""

    request: GenerationRequest
    best: Candidate
    candidates: list[Candidate]
    tokens_per_second: float
    tempo: float = 100.0  # bpm the music is meant at (the plan's, or the one asked for)
    priming: str = ""  # what priming did ("" when nothing primed the decoder)
    reference: str | None = None  # the reference piece named by the caller, if one was
    reading: dict[str, tuple[str, float]] = field(default_factory=dict)  # instruction read
    adapter: str | None = None  # the LoRA adapter merged into the decoder
    tokenizer: ScoreTokenizer | None = field(default=None, repr=False, compare=False)

    def score(self, tokenizer: ScoreTokenizer | None = None) -> symusic.Score:
        """The best candidate's notes (one track per role, ticks from time 0)."""
        return (tokenizer or self.tokenizer).decode(self.best.ids)


# --- Stage 7: render --------------------------------------------------------------------------


@dataclass
class RenderedAudio(_Json):
    """A score rendered to a WAV file."""

    path: str
    midi: str
    soundfont: str
    sample_rate: int
    duration: float  # seconds of audio written
    midi_duration: float  # seconds until the score's last note-off
    peak_dbfs: float
