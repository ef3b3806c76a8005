"""Tokens: the REMI vocabulary with voice roles and composer's control tokens."""

from composer.tokens.spec import ROLES, STYLES, TokenizerSpec, key_name, parse_key
from composer.tokens.tokenizer import BarControls, ScoreTokenizer

__all__ = ["ROLES", "STYLES", "BarControls", "ScoreTokenizer", "TokenizerSpec", "key_name",
           "parse_key"]  # fmt: skip
