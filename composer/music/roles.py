"""Voice roles: what each part of a score does, from the top of the texture to the bottom.

The corpus reader labels each part of a piece with a role, the tokenizer writes roles as its
programs, and the arranger gives each role an instrument.
"""

ROLES = ("melody", "harmony1", "harmony2", "harmony3", "harmony4", "bass")
MELODY, BASS = 0, len(ROLES) - 1
CHORDS_TRACK = "chords"  # the arranged score's track of chord symbols (lyric events, no notes)


def roles_for(instruments: int) -> tuple[int, ...]:
    """Decoder roles for ``instruments`` parts: melody, inner voices, and a bass from two."""
    if instruments <= 1:
        return (MELODY,)
    inner = tuple(range(1, min(instruments - 2, 4) + 1))
    return (MELODY, *inner, BASS)
