"""Stage 5, generate: a GenerationRequest (from the plan, or from values and words) becomes music.

``generate`` loads the checkpoint once per process, merges the style adapter the request's
style names (and decodes with its guidance), primes the decoder from a reference piece, decodes
(composer.model.decode) and, given a path, writes the best candidate as a MIDI file. Without a
request, one is made from the values and words given (``request_from``): what ``composer
generate`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from composer.errors import ComposerError
from composer.model import adapters
from composer.model.checkpoint import cached_checkpoint
from composer.model.decode import check_request, decode
from composer.model.export import write_midi
from composer.music.keys import Key, parse_key
from composer.music.roles import roles_for
from composer.paths import DEFAULT_MODEL
from composer.progress import ProgressFn, no_progress
from composer.tokens import STYLES
from composer.types import BarControls, GenerationRequest, GenerationResult, Plan, References

DEFAULT_TEMPO = 100.0


def uniform_controls(
    bars: int, intensity: Sequence[int] | None = None, sections: tuple[int, ...] = (0,)
) -> tuple[BarControls, ...]:
    """Per-bar controls from a (cycled) intensity list and section starts, with no hits."""
    levels = list(intensity or [1])
    return tuple(
        BarControls(intensity=levels[i % len(levels)], section=i in sections) for i in range(bars)
    )


def request_for(plan: Plan) -> GenerationRequest:
    """The decoder's request for ``plan``: its style, key, meter and per-bar controls."""
    return GenerationRequest(
        style=plan.style.value,
        key=tuple(plan.key.value),
        meter=tuple(plan.meter.value),
        controls=tuple(BarControls(b.intensity, b.hit, b.section) for b in plan.bars),
        roles=roles_for(len(plan.instruments.value)),
        every_role_every_bar=True,
        seed=plan.seed,
    )


def request_from(
    *,
    style: str = "chorale",
    key: Key | str | None = None,
    meter: tuple[int, int] | str | None = None,
    tempo: float | None = None,
    bars: int = 16,
    intensity: Sequence[int] | None = None,
    instruction: str | None = None,
    seed: int = 0,
    candidates: int = 4,
    temperature: float = 1.0,
    top_p: float = 0.95,
    model: str | Path | None = None,
) -> tuple[GenerationRequest, float, dict[str, tuple[str, float]]]:
    """The request (and tempo) that values and words make: ``key`` ("D minor"), ``meter``
    ("6/8"), ``tempo`` in bpm, per-bar ``intensity`` levels (cycled), and an ``instruction`` in
    plain words, whose reading (by the model's instruction reader) sets what the values leave
    unset. Also returns the reading: {attribute: (value, probability)}."""
    if style not in STYLES:
        raise ComposerError(None, f"unknown style {style!r}; valid styles: " + ", ".join(STYLES))
    try:
        key = parse_key(key) if isinstance(key, str) else key
        if isinstance(meter, str):
            meter = tuple(int(x) for x in meter.split("/"))  # type: ignore[assignment]
    except ValueError as e:
        raise ComposerError(None, str(e) if "valid" in str(e) else f"bad meter ({e})") from None
    if intensity is not None and not all(0 <= v <= 3 for v in intensity):
        raise ComposerError(None, "intensity levels are 0, 1, 2 or 3")
    roles, tilt, well, reading = None, 0.0, 0.0, {}
    if instruction:
        from composer.model.instruct import read_instruction

        said, confidence, ctl = read_instruction(
            instruction, model or DEFAULT_MODEL, key=key, meter=meter, tempo=tempo,
            intensity=tuple(intensity) if intensity else None,
        )  # fmt: skip
        reading = {a: (v, confidence[a]) for a, v in said.stated().items()}
        key, meter, tempo, intensity = ctl.key, ctl.meter, ctl.tempo, ctl.intensity
        roles, tilt, well = ctl.roles, ctl.register_tilt, ctl.register_well
    request = GenerationRequest(
        style=style,
        key=tuple(key or (0, "major")),
        meter=tuple(meter or (4, 4)),
        controls=uniform_controls(bars, intensity),
        seed=seed,
        candidates=candidates,
        temperature=temperature,
        top_p=top_p,
        roles=roles,
        register_tilt=tilt,
        register_well=well,
    )
    return request, DEFAULT_TEMPO if tempo is None else float(tempo), reading


def generate(
    request: GenerationRequest | Plan | None = None,
    *,
    tempo: float | None = None,
    references: References | None = None,
    reference: str | Path | None = None,
    model: str | Path | None = None,
    adapter: str | None = adapters.AUTO,
    style_guidance: float | None = None,
    instruction: str | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
    **values,
) -> GenerationResult:
    """Write music for ``request`` (a GenerationRequest, or a Plan: ``request_for`` it; or,
    without one, the ``values`` and ``instruction`` that ``request_from`` reads) with the
    decoder at ``model`` (default: the shipped one).

    - ``adapter``: a LoRA adapter's name, None for the base alone, ``"auto"`` for the one named
      after the request's style when the model has one (decoded with its guidance away from the
      neighbouring style, at ``style_guidance`` in place of its own scale when given), or
      ``"instruct"``: the instruct adapter, whose prefix reads ``instruction``.
    - Priming: ``references`` (the retrieve stage's picks) or ``reference``: a file
      ``FILE[#N]``, or ``"auto"`` for the library's best piece for the request.
    - ``output``: a MIDI file to write, at ``tempo`` bpm (default 100).
    """
    model = model or DEFAULT_MODEL
    if adapter == adapters.INSTRUCT:
        if not instruction:
            raise ComposerError(None, "the instruct adapter conditions on an instruction; give one")
        if style_guidance not in (None, 1.0):
            raise ComposerError(None, "style guidance steers a style adapter, not an instruction")
    reading: dict[str, tuple[str, float]] = {}
    if isinstance(request, Plan):
        tempo = request.tempo.value if tempo is None else tempo
        request = request_for(request)
    if request is None:
        request, tempo, reading = request_from(
            **values, tempo=tempo, instruction=instruction, model=model
        )
    elif values:
        raise ComposerError(None, "give a request or values to make one, not both")
    tempo = DEFAULT_TEMPO if tempo is None else tempo
    prefix = None
    if adapter == adapters.INSTRUCT:
        from composer.model.instruct import load_instruct

        inst = load_instruct(cached_checkpoint(model), model)
        ckpt, prefix = inst.checkpoint, inst.prefix(instruction)
    else:
        if adapter == adapters.AUTO:
            adapter = adapters.style_adapter(model, request.style)
        ckpt = cached_checkpoint(model, adapter)
        if request.contrast is None:
            contrast = adapters.style_contrast(model, adapter, style_guidance)
            request = dataclasses.replace(request, contrast=contrast)
    check_request(request, ckpt.tokenizer, tempo if output is not None else None)
    request, priming, source = _primed(request, references, reference, tempo, ckpt.tokenizer)
    result = decode(ckpt, request, progress, prefix=prefix)
    result = dataclasses.replace(
        result, tempo=tempo, priming=priming, reference=source, reading=reading,
        adapter=adapter, tokenizer=ckpt.tokenizer,
    )  # fmt: skip
    if output is not None:
        write_midi(
            ckpt.tokenizer, result.best.ids, output, tempo=tempo, key=request.key,
            overwrite=overwrite,
        )  # fmt: skip
    return result


def _primed(request, references, reference, tempo, tok):
    """(request primed, what priming did, the reference's name) from the retrieve stage's
    picks, a reference file, or ``"auto"``: the library's best piece for the request."""
    from composer.model import prime

    if references is not None:
        primed, how = prime.prime_from(request, references, tok)
        return primed, how, None
    if reference is None:
        return request, "", None
    if str(reference) == "auto":
        found = prime.best_reference(request, tempo, tok)
        if found is None:
            meter = "{}/{}".format(*request.meter)
            raise ComposerError(None, f"no library piece has bars in {meter}")
        meta, ref = found
        source = f"{meta.title} ({meta.composer or meta.collection}), {meta.id}"
    else:
        ref = prime.load_reference(reference, tok)
        source = ref.id
    how = prime.plan_priming(request, ref, tok)
    return how.apply(request), how.describe(), source
