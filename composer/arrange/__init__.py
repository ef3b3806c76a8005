"""Stage 6, arrange: roles to instruments in their ranges, percussion, hit accents, markers."""

from composer.arrange.arranger import arrange

__all__ = ["arrange"]
