"""Child processes that stop when their work is abandoned, and signals that end a command
the way Ctrl-C does (so every temporary output is removed on the way out)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator

from composer.progress import log


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: raised in the main thread, like KeyboardInterrupt for SIGINT
    (a BaseException, so that ``except Exception`` does not swallow it)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    A closed terminal, ``timeout`` or a container stop would otherwise kill the process
    outright, leaving temporary outputs and an ffmpeg child still writing into them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise Terminated(signum)

    signums = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(
    cmd: list[str], cancel: threading.Event | None = None, poll_s: float = 0.1
) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion with its output captured (text).

    The child is stopped (SIGTERM, then SIGKILL after 2 s) when ``cancel`` is set, or when this
    thread is interrupted (KeyboardInterrupt, :class:`Terminated`), before the exception goes on.
    """
    log.debug("running %s", " ".join(cmd))
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as proc:
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=poll_s)
                    break
                except subprocess.TimeoutExpired:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled from None
        except BaseException:
            _stop(proc)
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class Cancelled(Exception):
    """The work was abandoned (its ``cancel`` event was set) and stopped part-way."""


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(2.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
