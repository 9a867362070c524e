"""Records one camera: supervises its ffmpeg, turns finished files into segments, keeps the gap ledger.

Watchdog: a run that ends (ffmpeg exits 0 when the camera dies, so an exit is never success) or that
produces no segment within max(2 x segment length + 30 s, 60 s) is restarted with capped exponential
backoff. While backing off from an unreachable camera the recorder knocks on its RTSP port every two
seconds and restarts at once when it answers, so recording resumes within seconds of the camera's return.
Every outage is one gap row, opened at the end of the last segment and closed at the start of the next.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from jifang.recorder.ffmpeg import INPUT_START, classify_failure, record_command, redact, url_with_credentials
from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.runs import RunFolder
from jifang.recorder.sink import SegmentSink
from jifang.recorder.source import InputSource

from jifang.config import CameraConfig, RecorderConfig
from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.errors import CameraError, CameraUnauthorizedError, CameraUnreachableError
from jifang.supervision import Backoff, die_with_parent, stop_process

log = logging.getLogger("jifang.recorder")

POLL_SECONDS = 0.5
KNOCK_SECONDS = 2.0
CONTIGUOUS_TOLERANCE = timedelta(seconds=2)


def stall_timeout(segment_seconds: float) -> float:
    return max(2 * segment_seconds + 30, 60.0)


def port_answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (322 if parts.scheme == "rtsps" else 554)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


class CameraRecorder:
    def __init__(
        self,
        camera: CameraConfig,
        grid: str,
        config: RecorderConfig,
        sink: SegmentSink,
        catalog: Catalog,
        metrics: RecorderMetrics,
        camera_dir: Path,
        password: str | None,
        clock: Callable[[], datetime],
        on_status: Callable[[str, str, str], None] | None = None,
        source: InputSource | None = None,
    ) -> None:
        self.camera = camera
        self.grid = grid
        self.config = config
        self.sink = sink
        self.catalog = catalog
        self.metrics = metrics
        self.camera_dir = camera_dir
        self.clock = clock
        self._url = url_with_credentials(camera.rtsp_url, camera.username, password)
        self._on_status = on_status or (lambda _camera, _status, _detail: None)
        self.source = source  # None: ffmpeg pulls camera.rtsp_url itself
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{camera.id}", daemon=True)
        self._backoff = Backoff(initial=1.0, cap=config.backoff_max_seconds)
        self._process: subprocess.Popen | None = None
        self._last_end: datetime | None = catalog.last_segment_end(camera.id)
        self._down = False
        self._first_segment_seen = False
        self._started_at = clock()
        self.metrics.camera_up.labels(camera.id).set(0)
        self.metrics.reconnects.labels(camera.id)
        self.metrics.dropped.labels(camera.id)

    # lifecycle

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()  # ffmpeg closes and lists the segment it is writing
        if self.source is not None:
            self.source.close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # crash recovery

    def recover_previous_runs(self) -> int:
        """Spool what earlier runs (killed or crashed) left in this camera's folder. Returns segments saved."""
        saved = 0
        for folder in sorted(self.camera_dir.glob("run-*")):
            saved += self._drain_run(RunFolder(folder), finished=True)
        self._first_segment_seen = False  # the first live segment still checks for agent downtime
        return saved

    # supervision loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                failure_lines = self._record_once()
                if self._stop.is_set():
                    break
                self._on_failure(failure_lines)
            except Exception as exc:  # disk full, database restart: keep the camera supervised, never die
                log.exception("camera %s: recorder pass failed; retrying", self.camera.id)
                self._kill_running()
                with contextlib.suppress(Exception):
                    self._on_failure([f"recorder error: {type(exc).__name__}: {exc}"])
            self._wait_before_restart()
        self.metrics.camera_up.labels(self.camera.id).set(0)

    def _kill_running(self) -> None:
        process = self._process
        if process is not None:
            stop_process(process, grace=5)
        self._process = None

    def _record_once(self) -> list[str]:
        run = RunFolder.create(self.camera_dir, self.clock())
        command = record_command(self.config.ffmpeg, self._url, run.path, self.config.segment_seconds,
                                 self.source.input_args() if self.source is not None else None)
        stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        try:
            # own session: a Ctrl-C or a cgroup-wide SIGTERM reaches the agent, which stops ffmpeg in order
            process = subprocess.Popen(command, stdin=subprocess.PIPE if self.source else subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                                       preexec_fn=die_with_parent)
        except OSError as exc:
            run.remove()
            return [f"cannot start {self.config.ffmpeg}: {exc.strerror}"]
        self._process = process
        if self.source is not None:
            try:
                assert process.stdin is not None
                self.source.open(process.stdin.buffer)  # stdin is text (text=True is for stderr): write bytes
            except CameraError as exc:  # e.g. the device is offline or refused the INVITE
                stop_process(process, grace=5)
                run.remove()
                self._process = None
                self._source_error: CameraError | None = exc
                return []
            self._source_error = None
        reader = threading.Thread(target=self._read_stderr, args=(process, run, stderr_tail), daemon=True)
        reader.start()
        last_progress = time.monotonic()
        stall_after = stall_timeout(self.config.segment_seconds)
        while process.poll() is None:
            if self._stop.wait(POLL_SECONDS):
                stop_process(process)
                break
            if self._drain_run(run, finished=False):
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall_after:
                log.warning("camera %s: no segment for %.0f s; restarting the recorder", self.camera.id, stall_after)
                stderr_tail.append(f"stalled: no segment for {stall_after:.0f} s")
                stop_process(process)
        if self.source is not None:
            self.source.close()
        reader.join(5)
        self._drain_run(run, finished=True)
        self._process = None
        return list(stderr_tail)

    def _read_stderr(self, process: subprocess.Popen, run: RunFolder, tail: collections.deque[str]) -> None:
        assert process.stderr is not None
        anchored = False
        for line in process.stderr:
            if not anchored and (match := INPUT_START.search(line)):
                run.set_anchor(float(match.group(1)))
                anchored = True
            tail.append(line.rstrip())
            log.debug("camera %s ffmpeg: %s", self.camera.id, redact(line.rstrip()))

    def _drain_run(self, run: RunFolder, finished: bool) -> int:
        """Spool the run's finished segments; when ``finished``, also the partial last one, then remove it."""
        saved = 0
        for listed in run.new_listed():
            if self._accept(listed.path, listed.start, listed.end):
                saved += 1
        if finished:
            last_end = run.last_listed_end
            for leftover in run.leftovers():
                start = last_end or run.anchor() or datetime.fromtimestamp(leftover.stat().st_mtime, UTC)
                segment = self.sink.accept(self.camera, self.grid, leftover, start, None)
                if segment is not None:
                    self._on_segment(segment.capture_start, segment.capture_end)
                    saved += 1
                    last_end = segment.capture_end
            run.remove()
        return saved

    def _accept(self, path: Path, start: datetime, end: datetime) -> bool:
        segment = self.sink.accept(self.camera, self.grid, path, start, end)
        if segment is None:
            return False
        self._on_segment(segment.capture_start, segment.capture_end)
        return True

    def _on_segment(self, start: datetime, end: datetime) -> None:
        closed = self.catalog.close_gap(self.camera.id, start)
        if self._down or not self._first_segment_seen:
            self._on_status(self.camera.id, "online", "")
        if closed is not None:
            log.info("camera %s: recording resumed; gap of %.1f s recorded (%s)", self.camera.id,
                     (start - closed.start_at).total_seconds(), closed.cause)
        elif not self._first_segment_seen and self._last_end and start - self._last_end > CONTIGUOUS_TOLERANCE:
            self.catalog.add_gap(self.camera.id, self._last_end, start, GapCause.NOT_RECORDED,
                                 "no recorder was running for this camera")
        self._first_segment_seen = True
        self._down = False
        self._backoff.reset()
        self._last_end = max(self._last_end, end) if self._last_end else end
        self.metrics.camera_up.labels(self.camera.id).set(1)

    def _on_failure(self, stderr_lines: list[str]) -> None:
        if self.source is not None:
            error = getattr(self, "_source_error", None) or self.source.failure(stderr_lines)
        else:
            error = classify_failure(self.camera.id, stderr_lines)
        self._last_error = error
        self._on_status(self.camera.id, "auth_failed" if isinstance(error, CameraUnauthorizedError)
                        else "unreachable", str(error))
        self.metrics.camera_up.labels(self.camera.id).set(0)
        self.metrics.reconnects.labels(self.camera.id).inc()
        now = self.clock()
        start = self._last_end or now
        if not self._down:
            log.warning("%s; recording stopped, retrying", error)
            if (not self._first_segment_seen and start < self._started_at - CONTIGUOUS_TOLERANCE
                    and not self.catalog.has_open_gap(self.camera.id)):
                # the camera was already down when this agent started: before that, no agent ran
                self.catalog.add_gap(self.camera.id, start, self._started_at, GapCause.NOT_RECORDED,
                                     "no recorder was running for this camera")
                start = self._started_at
            self.catalog.open_gap(self.camera.id, start, getattr(error, "gap_cause", GapCause.CAMERA_OFFLINE),
                                  str(error))
            self._down = True
        else:
            log.info("%s; still retrying", error)
            self.catalog.update_open_gap(self.camera.id, str(error))

    def _wait_before_restart(self) -> None:
        delay = self._backoff.next_delay()
        knock = isinstance(getattr(self, "_last_error", None), CameraUnreachableError)
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._stop.wait(min(KNOCK_SECONDS, remaining)):
                return
            if self.source is not None:
                if self.source.ready():
                    return
            elif knock and port_answers(self.camera.rtsp_url):
                log.info("camera %s: RTSP port answers again; reconnecting now", self.camera.id)
                return
