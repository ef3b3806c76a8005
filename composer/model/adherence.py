"""How well decoded music meets its request: the intensity and hit accents measured bar by bar
against the controls asked for, and the key a key-finder hears against the key asked for."""

from __future__ import annotations

import numpy as np

from composer.music.keys import AARDEN, find_key, key_correlations
from composer.tokens import ScoreTokenizer
from composer.tokens.tokenizer import DURATION, PITCH
from composer.types import GenerationRequest


def adherence(tok: ScoreTokenizer, ids: list[int], req: GenerationRequest) -> tuple[float, dict]:
    """How well ``ids`` meets the request: measured intensity and hits per bar, and the key."""
    measured = tok.measure_controls(ids, n_roles_hint=len(req.roles) if req.roles else None)
    bars = min(len(measured), req.bars)
    if bars == 0:
        return 0.0, {"bars": 0}
    inten = np.mean([measured[i].intensity == req.controls[i].intensity for i in range(bars)])
    wanted_hits = [i for i in range(bars) if req.controls[i].hit is not None]
    hits = (
        np.mean([measured[i].hit == req.controls[i].hit for i in wanted_hits])
        if wanted_hits
        else 1.0
    )
    key_fit = key_correlation(tok, ids, req.key)
    heard = best_key(tok, ids)
    # The key counts fully when it is the one a listener's key-finder hears, else by how close
    # the music's profile still is to it.
    key_score = 1.0 if heard == req.key else 0.5 * max(key_fit, 0.0)
    total = float((inten + hits + key_score) / 3)
    return total, {
        "intensity": float(inten),
        "hits": float(hits),
        "key_corr": key_fit,
        "key_heard": list(heard),
        "bars": len(measured),
    }


def pitch_class_durations(tok: ScoreTokenizer, ids: list[int]) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12,) of a token stream."""
    hist = np.zeros(12)
    pitch = None
    for i in ids:
        if tok.kind[i] == PITCH:
            pitch = int(tok.value[i])
        elif tok.kind[i] == DURATION and pitch is not None:
            hist[pitch % 12] += max(int(tok.ticks[i]), 1)
            pitch = None
    return hist


def key_correlation(tok: ScoreTokenizer, ids: list[int], key: tuple[int, str]) -> float:
    """Correlation of the duration-weighted pitch-class histogram with the key's profile."""
    corr = key_correlations(pitch_class_durations(tok, ids), AARDEN)
    return float(corr[key[0] % 12 + 12 * (key[1] == "minor")])


def best_key(tok: ScoreTokenizer, ids: list[int]) -> tuple[int, str]:
    """The key a listener's key-finder hears (composer.music.keys, Aarden-Essen profiles)."""
    return find_key(pitch_class_durations(tok, ids), AARDEN)
