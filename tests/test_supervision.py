"""The one stoppable background thread (jifang.supervision.Worker) and its periodic body (``every``)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from jifang.supervision import Worker, every


def wait_for(condition, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_every_keeps_going_after_a_failing_step_and_stops_at_once(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise ValueError("bad pass")

    worker = Worker("test-every", every(0.01, step, logging.getLogger("test"), "test step", at_once=True))
    with caplog.at_level(logging.ERROR):
        worker.start()
        assert wait_for(lambda: len(calls) >= 4), "the loop ended after the failing step"
        started = time.monotonic()
        worker.stop()
    assert not worker.is_alive()
    assert time.monotonic() - started < 5  # the body waits on the event, it does not sleep out a period
    assert [r.getMessage() for r in caplog.records] == ["test step failed"]
    assert worker._thread.name == "test-every" and worker._thread.daemon


def test_a_body_sees_the_stop_event_and_stop_before_start_is_harmless() -> None:
    seen: list[bool] = []

    def body(stop: threading.Event) -> None:
        stop.wait(60)
        seen.append(stop.is_set())

    idle = Worker("never-started", body)
    idle.stop()  # nothing to join
    worker = Worker("test-body", body)
    worker.start()
    worker.stop()
    assert seen == [True] and not worker.is_alive()
