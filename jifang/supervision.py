"""Process supervision shared by every part that runs ffmpeg: capped exponential backoff and a
terminate-then-kill stop."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import threading

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
