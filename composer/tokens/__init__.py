"""Tokens: the REMI vocabulary with voice roles and composer's control tokens."""

from composer.tokens.spec import STYLES, TokenizerSpec


def __getattr__(name: str):
    # The tokenizer is built on miditok, which imports torch: loaded when first asked for, so
    # that what needs only the vocabulary's configuration (the plan) starts fast.
    if name == "ScoreTokenizer":
        from composer.tokens.tokenizer import ScoreTokenizer

        return ScoreTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["STYLES", "ScoreTokenizer", "TokenizerSpec"]
