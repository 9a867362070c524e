"""Process supervision shared by every part that runs ffmpeg or a background loop: capped exponential backoff,
a terminate-then-kill stop, and ``Worker``, the one stoppable background thread."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for children that must not outlive the agent: when the thread that started them dies
    (even by SIGKILL) the kernel sends them SIGTERM, and ffmpeg closes its segment. Without this, an orphaned
    ffmpeg would keep recording a camera another agent (or the restarted one) records too."""
    with contextlib.suppress(OSError):  # not Linux/glibc: nothing to arm
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Backoff:
    """1, 2, 4, ... seconds, capped; reset after a healthy run."""

    def __init__(self, initial: float = 1.0, cap: float = 60.0) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * (2 ** min(self.failures, 32)))
        self.failures = min(self.failures + 1, 64)  # no overflow after days of retries
        return delay

    def reset(self) -> None:
        self.failures = 0


def stop_process(process: subprocess.Popen, grace: float = 10.0, signalled: bool = False) -> int | None:
    """ONE SIGTERM (unless ``signalled``: the caller sent it already), a bounded wait, then SIGKILL.

    Never a second SIGTERM: ffmpeg 5.1 given two a few ms apart aborts the segment it is closing (a 28-byte
    file); given one, it finishes the segment and lists it."""
    if process.poll() is None:
        if not signalled:
            process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def wait_or_stop(stop: threading.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when stopping."""
    return stop.wait(seconds)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: long-running commands stop cleanly when it is set."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


class Worker:
    """A named daemon thread running ``body(stop)`` until ``stop()`` sets the event; ``body`` returns when it sees
    it set (wait on it instead of sleeping, so a stop takes effect at once)."""

    def __init__(self, name: str, body: Callable[[threading.Event], None], join_seconds: float = 10.0) -> None:
        self.stopping = threading.Event()
        self.join_seconds = join_seconds
        self._thread = threading.Thread(target=body, args=(self.stopping,), name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the body to end and wait for it (at most ``join_seconds``); harmless when it never started."""
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.join_seconds)

    def is_alive(self) -> bool:
        return self._thread.is_alive()


def every(seconds: float, step: Callable[[], object], log: logging.Logger, what: str,
          at_once: bool = False) -> Callable[[threading.Event], None]:
    """A ``Worker`` body that runs ``step`` every ``seconds`` until stopped (first at once when ``at_once``); a
    failing step is logged as ``what failed`` and the loop goes on, so one bad pass never ends the worker."""

    def body(stop: threading.Event) -> None:
        if at_once:
            _guarded(step, log, what)
        while not stop.wait(seconds):
            _guarded(step, log, what)

    return body


def _guarded(step: Callable[[], object], log: logging.Logger, what: str) -> None:
    try:
        step()
    except Exception:
        log.exception("%s failed", what)
