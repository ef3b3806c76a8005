"""Stage 7, perform: dynamics by phrase, meter, intensity and hit points; expression."""

from composer.perform.dynamics import perform

__all__ = ["perform"]
