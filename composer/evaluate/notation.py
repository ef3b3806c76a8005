"""Checks on written notation: what LilyPond says about a MusicXML file, and what music21 reads
back from it (clefs, signatures, bar counts, tuplets per part)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from composer.music.m21 import music21_converter

# LilyPond 2.24 says "bar check failed", older versions "barcheck failed".
_BAR_CHECK = re.compile(r"bar ?check failed", re.IGNORECASE)
# "error:", "fatal error:", "programming error:" and Python's "KeyError:" from musicxml2ly.
_ERROR = re.compile(r"error:", re.IGNORECASE)


def lilypond_warnings(musicxml: Path, workdir: Path, *, timeout: float = 300.0) -> list[str] | None:
    """Bar-check warnings and error lines from converting ``musicxml`` with ``musicxml2ly`` and
    engraving the result with ``lilypond`` (their files go to ``workdir``); [] where there are
    none. None where either tool is not installed."""
    converter, engraver = shutil.which("musicxml2ly"), shutil.which("lilypond")
    if converter is None or engraver is None:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    ly = workdir / f"{musicxml.stem}.ly"
    ly.unlink(missing_ok=True)  # engrave this file's conversion, never an earlier one
    lines = _run([converter, "--output", str(ly), str(musicxml.resolve())], workdir, timeout)
    if ly.exists():
        # No PDF is needed: bar checks and errors come while the music is typeset.
        command = [engraver, "--loglevel=WARNING", "-dno-print-pages",
                   "--output", str(workdir / musicxml.stem), str(ly)]  # fmt: skip
        lines += _run(command, workdir, timeout)
    return lines


def _run(command: list[str], workdir: Path, timeout: float) -> list[str]:
    """The bar-check and error lines ``command`` prints; a line of its own for a time-out or a
    failure that printed no error."""
    name = Path(command[0]).name
    try:
        proc = subprocess.run(
            command, cwd=workdir, capture_output=True, text=True, errors="replace",
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return [f"error: {name} did not finish in {timeout:g} s"]
    found = [
        line.strip()
        for line in (proc.stdout + proc.stderr).splitlines()
        if _BAR_CHECK.search(line) or _ERROR.search(line)
    ]
    if proc.returncode != 0 and not any(_ERROR.search(line) for line in found):
        found.append(f"error: {name} exited with status {proc.returncode}")
    return found


@dataclass(frozen=True)
class PartFacts:
    """One part as music21 reads it back."""

    name: str
    clef: str | None  # "treble", "bass", "alto", "treble8vb"... at the part's start
    key_signature: bool  # in the first measure
    time_signature: bool  # in the first measure
    measures: int
    tuplets: int  # notes and rests with a tuplet


@dataclass(frozen=True)
class NotationFacts:
    """Every part of a MusicXML file, in score order."""

    parts: tuple[PartFacts, ...]


def notation_facts(musicxml: Path) -> NotationFacts:
    """The facts of every part of ``musicxml``, parsed with music21."""
    from music21 import clef, key, meter, stream

    score = music21_converter().parse(
        str(musicxml), format="musicxml", forceSource=True, storePickle=False
    )
    facts: list[PartFacts] = []
    for part in score.parts:
        measures = list(part.getElementsByClass(stream.Measure))
        first = measures[0] if measures else stream.Measure()
        start = first.getElementsByOffset(0, classList=[clef.Clef, key.KeySignature,
                                                        meter.TimeSignature])  # fmt: skip
        clefs = [c for c in start if isinstance(c, clef.Clef)]
        facts.append(
            PartFacts(
                name=part.partName or "",
                clef=type(clefs[0]).__name__.removesuffix("Clef").lower() if clefs else None,
                key_signature=any(isinstance(e, key.KeySignature) for e in start),
                time_signature=any(isinstance(e, meter.TimeSignature) for e in start),
                measures=len(measures),
                tuplets=sum(1 for n in part.recurse().notesAndRests if n.duration.tuplets),
            )
        )
    return NotationFacts(tuple(facts))
