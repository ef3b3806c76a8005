"""Seeded mutations of real files, and a runner that holds each case to a time budget.

A mutant is a function of (source bytes, seed) only, so a failing case is reproduced from the
seed the report gives: ``mutate_midi(Path(src).read_bytes(), seed)``.
"""

from __future__ import annotations

import random
import signal
import struct
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from composer.errors import ComposerError


def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _flip(b: bytearray, rng: random.Random) -> bytearray:
    for _ in range(rng.randint(1, 24)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return b


def _truncate(b: bytearray, rng: random.Random) -> bytearray:
    return b[: rng.randrange(len(b))]


def _insert(b: bytearray, rng: random.Random) -> bytearray:
    i = rng.randrange(len(b) + 1)
    b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return b


def _delete(b: bytearray, rng: random.Random) -> bytearray:
    i = rng.randrange(len(b))
    del b[i : i + rng.randint(1, 256)]
    return b


def _repeat(b: bytearray, rng: random.Random) -> bytearray:
    i = rng.randrange(len(b))
    piece = b[i : i + rng.randint(1, 64)]
    b[i:i] = piece * rng.randint(2, 64)
    return b


def _zero(b: bytearray, rng: random.Random) -> bytearray:
    i = rng.randrange(len(b))
    n = rng.randint(1, 4096)
    b[i : i + n] = bytes(len(b[i : i + n]))
    return b


def _huge_delta(b: bytearray, rng: random.Random) -> bytearray:
    """A delta time of up to 2^28 ticks where an event starts (in the music: hours or years)."""
    starts = [i for i in range(14, len(b) - 1) if b[i] in (0x90, 0x80, 0xFF)] or [len(b) // 2]
    i = rng.choice(starts)
    b[i:i] = vlq(rng.choice([0x0FFFFFFF, 0x00FFFFFF, rng.randrange(1 << 28)])) + b"\xff\x01\x00"
    return b


def _tempo(b: bytearray, rng: random.Random) -> bytearray:
    """Every tempo meta event set to one extreme (1 microsecond to 16.7 s a quarter)."""
    value = rng.choice([0, 1, 0xFFFFFF, rng.randrange(1 << 24)]).to_bytes(3, "big")
    i = b.find(b"\xff\x51\x03")
    while i >= 0:
        b[i + 3 : i + 6] = value
        i = b.find(b"\xff\x51\x03", i + 6)
    return b


def _header(b: bytearray, rng: random.Random) -> bytearray:
    """The header's format, track count or division set to a rare or impossible value."""
    if len(b) < 14:
        return _insert(b, rng)
    field_, value = rng.choice(
        [(8, rng.choice([0, 1, 2, 3, 0xFFFF])), (10, rng.choice([0, 1, 2, 0xFFFF])),
         (12, rng.choice([0, 1, 0x7FFF, 0xE728, 0xE250, 0xFFFF]))]
    )  # fmt: skip
    b[field_ : field_ + 2] = struct.pack(">H", value)
    return b


def _chunk_length(b: bytearray, rng: random.Random) -> bytearray:
    i = b.find(b"MTrk", rng.randrange(max(1, len(b))))
    if i < 0:
        i = b.find(b"MTrk")
    if i < 0:
        return _flip(b, rng)
    b[i + 4 : i + 8] = struct.pack(">I", rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 32)]))
    return b


_COMMON = [_flip, _truncate, _insert, _delete, _repeat, _zero]
_MIDI = _COMMON + [_huge_delta, _tempo, _header, _chunk_length]


def _mutate(data: bytes, seed: int, ops: list) -> bytes:
    rng = random.Random(seed)
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not b:
            break
        b = rng.choice(ops)(b, rng)
    return bytes(b)


def _fit_chunks(b: bytes) -> bytes:
    """Each MTrk's length set to where the next one starts, as a tolerant writer would: the
    mutant then reaches the code behind the chunk reader."""
    b = bytearray(b)
    starts = [i for i in range(len(b)) if b[i : i + 4] == b"MTrk"]
    for i, nxt in zip(starts, [*starts[1:], len(b)][: len(starts)], strict=True):
        b[i + 4 : i + 8] = struct.pack(">I", max(0, nxt - i - 8))
    return bytes(b)


def mutate_midi(data: bytes, seed: int) -> bytes:
    """A seeded mutant of a MIDI file: random bytes, cuts, and the fields players trust; half
    of them with their chunk lengths made to fit again."""
    mutant = _mutate(data, seed, _MIDI)
    return _fit_chunks(mutant) if random.Random(~seed).random() < 0.5 else mutant


def mutate_video(data: bytes, seed: int) -> bytes:
    """A seeded mutant of a video file; half the mutations aim at the first 64 KB, where the
    container's headers are."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        head = _mutate(data[:65536], seed, _COMMON)
        return head + data[65536:]
    return _mutate(data, seed, _COMMON)


class OverBudget(BaseException):
    """A case ran past its time budget (raised by the interval timer in the main thread)."""


@dataclass
class Report:
    """How the cases of one entry point ended."""

    name: str
    results: int = 0
    refused: Counter = field(default_factory=Counter)  # ComposerError problem -> count
    failures: list[str] = field(default_factory=list)  # uncaught, over time or over size
    slowest: float = 0.0

    @property
    def cases(self) -> int:
        return self.results + sum(self.refused.values()) + len(self.failures)

    def line(self) -> str:
        return (
            f"{self.name}: {self.cases} cases, {self.results} results, "
            f"{sum(self.refused.values())} refused in one line, {len(self.failures)} failures, "
            f"slowest {self.slowest:.2f} s"
        )


def run_case(
    report: Report, label: str, budget_s: float, case: Callable[[], object], check=None
) -> None:
    """Run ``case`` under a ``budget_s`` timer: a result (passed to ``check``, which returns a
    problem or None) or a ComposerError is fine; anything else is a failure."""

    def alarm(_signum, _frame):
        raise OverBudget

    previous = signal.signal(signal.SIGALRM, alarm)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    try:
        value = case()
        signal.setitimer(signal.ITIMER_REAL, 0)
        problem = check(value) if check else None
        if problem:
            report.failures.append(f"{label}: {problem}")
        else:
            report.results += 1
    except ComposerError as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        report.refused[e.problem] += 1
    except OverBudget:
        report.failures.append(f"{label}: over the {budget_s:g} s budget")
    except Exception as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        where = traceback.extract_tb(e.__traceback__)[-1]
        report.failures.append(
            f"{label}: {type(e).__name__}: {e} ({where.filename}:{where.lineno})"[:400]
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        report.slowest = max(report.slowest, time.perf_counter() - start)
