"""Records one camera: supervises its ffmpeg, turns finished files into segments, keeps the gap ledger.

Watchdog: a run that ends (ffmpeg exits 0 when the camera dies, so an exit is never success) or that
produces no segment within max(2 x segment length + 30 s, 60 s) is restarted with capped exponential
backoff. While backing off the recorder re-checks the cause every two seconds (an unreachable camera: its
RTSP port; a full disk: free space on the spool) and restarts at once when it has cleared, so recording
resumes within seconds. Every outage is one gap row, opened at the end of the last segment and closed at the
start of the next, with the cause found from evidence (``disk_full``, ``database_unavailable``,
``camera_offline`` with the camera's reason), kept rather than overwritten by ffmpeg's last line.

The database is not needed to record: segments go to the spool (the write-ahead log) and gap writes wait in
a ``GapBook`` while it is down, so a database outage neither stops ffmpeg nor is blamed on the camera.
Stop: ONE SIGTERM, then a bounded wait while ffmpeg finishes and lists the segment it is writing.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from jifang.recorder.ffmpeg import INPUT_START, classify_failure, record_command, redact
from jifang.recorder.gaps import GapBook
from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.relay import child_env, secret_free_url
from jifang.recorder.runs import RunFolder
from jifang.recorder.sink import SegmentSink
from jifang.recorder.source import InputSource
from sqlalchemy.exc import SQLAlchemyError

from jifang.config import CameraConfig, RecorderConfig
from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.errors import CameraError, CameraUnauthorizedError, CameraUnreachableError, CatalogError
from jifang.supervision import Backoff, die_with_parent, stop_process

log = logging.getLogger("jifang.recorder")

# The recorder's thread sleeps until ffmpeg's stderr says it opened a new segment file (the one before it is then
# finished and listed) or ffmpeg ended: one wake-up per segment. A thread waking twice a second per camera cost
# the agent more than hashing its video. The safety poll catches what no line announces; the short one retries
# a list line that was not yet readable when its segment's successor opened.
SAFETY_POLL_SECONDS = 5.0
POLL_SECONDS = 0.5
KNOCK_SECONDS = 2.0
CONTIGUOUS_TOLERANCE = timedelta(seconds=2)
STOP_GRACE_SECONDS = 10.0  # ffmpeg closes a segment in well under a second; a hung one is killed after this
RECHECK_CAP_SECONDS = 10.0  # a failure whose cause cannot be probed is retried at least this often
MIN_FREE_BYTES = 64 << 20  # free space on the spool's disk before recording is retried after "disk full"
DISK_FULL = re.compile(r"No space left on device|Disk quota exceeded")


class Fault:
    """Why recording stopped, from the evidence at hand: the gap cause and a one-line reason."""

    def __init__(self, cause: GapCause, detail: str, camera_error: CameraError | None = None) -> None:
        self.cause = cause
        self.detail = detail
        self.camera_error = camera_error

    def __str__(self) -> str:
        return self.detail


def fault_from_exception(camera_id: str, exc: BaseException) -> Fault:
    """An exception of the recorder itself (never the camera's fault)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Fault(GapCause.DISK_FULL, f"camera {camera_id}: spool disk full ({exc.strerror})")
    if isinstance(exc, SQLAlchemyError | CatalogError):
        return Fault(GapCause.DATABASE_UNAVAILABLE, f"camera {camera_id}: catalog database unavailable "
                     f"({type(exc).__name__})")
    return Fault(GapCause.CAMERA_OFFLINE, f"camera {camera_id}: recorder error: {type(exc).__name__}: {exc}"[:300])


def fault_from_stderr(camera_id: str, stderr_lines: list[str]) -> Fault:
    """ffmpeg's own diagnostics: a full disk is the recorder's fault, the rest is the camera's."""
    for line in stderr_lines:
        if DISK_FULL.search(line):
            return Fault(GapCause.DISK_FULL, f"camera {camera_id}: disk full while writing: {redact(line.strip())}")
    error = classify_failure(camera_id, stderr_lines)
    return Fault(GapCause.CAMERA_OFFLINE, str(error), error)


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
        self._url = secret_free_url(camera.rtsp_url, camera.username, password)  # ffmpeg's argv is public
        self._on_status = on_status or (lambda _camera, _status, _detail: None)
        self.source = source  # None: ffmpeg pulls camera.rtsp_url itself
        self._source_error: CameraError | None = None  # why the source could not open, for the gap row
        self._stop = threading.Event()
        self._wake = threading.Event()  # a segment opened, ffmpeg's stderr ended, or stop was asked
        self._thread = threading.Thread(target=self._run, name=f"recorder-{camera.id}", daemon=True)
        self._backoff = Backoff(initial=1.0, cap=config.backoff_max_seconds)
        self._process: subprocess.Popen | None = None
        self._signalled: subprocess.Popen | None = None  # the process already sent its one SIGTERM
        self._signal_lock = threading.Lock()
        self._gaps = GapBook(catalog, camera.id)
        self._last_end: datetime | None = self._last_catalogued_end()
        self._down = False
        self._fault: Fault | None = None
        self._first_segment_seen = False
        self._started_at = clock()
        self.metrics.camera_up.labels(camera.id).set(0)
        self.metrics.reconnects.labels(camera.id)
        self.metrics.dropped.labels(camera.id)

    # lifecycle

    def start(self) -> None:
        self._thread.start()

    def _last_catalogued_end(self) -> datetime | None:
        try:
            return self.catalog.last_segment_end(self.camera.id)
        except Exception as exc:  # database down at start: record anyway, without the downtime check
            log.warning("camera %s: catalog unavailable (%s); recording without checking the time since the "
                        "last run", self.camera.id, type(exc).__name__)
            return None

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()
        process = self._process
        if process is not None:
            self._terminate_once(process)  # ffmpeg closes and lists the segment it is writing
        if self.source is not None:
            self.source.close()

    def _terminate_once(self, process: subprocess.Popen) -> None:
        """Send ``process`` its single SIGTERM, unless it had it already (the stop request and the loop race)."""
        with self._signal_lock:
            if self._signalled is process:
                return
            self._signalled = process
        if process.poll() is None:
            process.terminate()

    def _finish(self, process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
        """One SIGTERM, a bounded wait, SIGKILL only if ffmpeg hangs."""
        self._terminate_once(process)
        stop_process(process, grace=grace, signalled=True)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @staticmethod
    def stop_all(recorders: list[CameraRecorder], timeout: float = 30) -> None:
        """Ask every recorder to stop, then wait for each: their ffmpegs close their last segments in parallel,
        so N cameras stop in about one camera's time."""
        for recorder in recorders:
            recorder.request_stop()
        for recorder in recorders:
            recorder.join(timeout)

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
                self._on_fault(self._fault_of(failure_lines))
            except Exception as exc:  # disk full, a broken spool: keep the camera supervised, never die
                log.exception("camera %s: recorder pass failed; retrying", self.camera.id)
                self._kill_running()
                with contextlib.suppress(Exception):
                    self._on_fault(fault_from_exception(self.camera.id, exc))
            self._wait_before_restart()
        self.metrics.camera_up.labels(self.camera.id).set(0)

    def _kill_running(self) -> None:
        process = self._process
        if process is not None:
            self._finish(process, grace=5)
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
                                       preexec_fn=die_with_parent, env=child_env())
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
                self._source_error = exc
                return []
            self._source_error = None
        self._wake.clear()
        if self._stop.is_set():  # asked just before the clear: keep its wake-up
            self._wake.set()
        reader = threading.Thread(target=self._read_stderr, args=(process, run, stderr_tail), daemon=True)
        reader.start()
        last_progress = time.monotonic()
        stall_after = stall_timeout(self.config.segment_seconds)
        wait = SAFETY_POLL_SECONDS
        while process.poll() is None:
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                self._finish(process)
                break
            if self._drain_run(run, finished=False):
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall_after:
                log.warning("camera %s: no segment for %.0f s; restarting the recorder", self.camera.id, stall_after)
                stderr_tail.append(f"stalled: no segment for {stall_after:.0f} s")
                self._finish(process)
            if not reader.is_alive():
                # stderr ended: ffmpeg is exiting; wait for it here rather than a safety poll later
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(STOP_GRACE_SECONDS)
            wait = POLL_SECONDS if run.awaiting_list() else SAFETY_POLL_SECONDS
        if self.source is not None:
            self.source.close()
        reader.join(5)
        self._drain_run(run, finished=True)
        self._process = None
        return list(stderr_tail)

    def _read_stderr(self, process: subprocess.Popen, run: RunFolder, tail: collections.deque[str]) -> None:
        assert process.stderr is not None
        anchored = False
        try:
            for line in process.stderr:
                opened = run.note_line(line, time.monotonic())
                if not anchored and (match := INPUT_START.search(line)):
                    run.set_anchor(float(match.group(1)))
                    anchored = True
                tail.append(line.rstrip())
                log.debug("camera %s ffmpeg: %s", self.camera.id, redact(line.rstrip()))
                if opened:
                    self._wake.set()
        finally:
            self._wake.set()

    def _drain_run(self, run: RunFolder, finished: bool) -> int:
        """Spool the run's finished segments; when ``finished``, also the partial last one, then remove it."""
        saved = 0
        for listed in run.new_listed(finished=finished):
            if self._accept(listed.path, listed.start, listed.end):
                saved += 1
                if listed.clock_step:
                    self._on_clock_step(listed.start, listed.end, listed.clock_step)
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

    def _on_clock_step(self, start: datetime, end: datetime, step: float) -> None:
        """ffmpeg's wall clock stepped inside this segment: it was re-timed by the monotonic clock; say so."""
        self.metrics.clock_steps.labels(self.camera.id).inc()
        log.warning("camera %s: the recorder's wall clock stepped by %+.1f s inside the segment at %s; timed by the "
                    "monotonic clock instead (keep NTP slewing, not stepping)", self.camera.id, step, start.isoformat())
        self._gaps.add(start, end, GapCause.CLOCK_STEP,
                       f"wall clock stepped by {step:+.1f} s inside this segment; its interval is timed by the "
                       "monotonic clock and its video timestamps are unreliable")

    def _on_segment(self, start: datetime, end: datetime) -> None:
        closed = None
        if self._down or not self._first_segment_seen or self._gaps.pending:
            # only then can a gap be open; otherwise no database round trip per segment
            closed = self._gaps.close(start)
            self._on_status(self.camera.id, "online", "")
        if closed is not None:
            log.info("camera %s: recording resumed; gap of %.1f s recorded (%s)", self.camera.id,
                     (start - closed.start_at).total_seconds(), closed.cause)
        elif self._down:
            log.info("camera %s: recording resumed", self.camera.id)
        elif not self._first_segment_seen and self._last_end and start - self._last_end > CONTIGUOUS_TOLERANCE:
            self._gaps.add(self._last_end, start, GapCause.NOT_RECORDED, "no recorder was running for this camera")
        self._first_segment_seen = True
        self._down = False
        self._fault = None
        self._backoff.reset()
        self._last_end = max(self._last_end, end) if self._last_end else end
        self.metrics.camera_up.labels(self.camera.id).set(1)

    def _fault_of(self, stderr_lines: list[str]) -> Fault:
        """Why this run ended: an input source (a GB/T 28181 channel) knows its own cause; ffmpeg's lines tell the
        rest."""
        if self.source is not None:
            error = self._source_error or self.source.failure(stderr_lines)
            return Fault(getattr(error, "gap_cause", GapCause.CAMERA_OFFLINE), str(error), error)
        return fault_from_stderr(self.camera.id, stderr_lines)

    def _on_fault(self, fault: Fault) -> None:
        error = fault.camera_error
        if error is not None:
            self._on_status(self.camera.id, "auth_failed" if isinstance(error, CameraUnauthorizedError)
                            else "unreachable", str(error))
        self.metrics.camera_up.labels(self.camera.id).set(0)
        self.metrics.reconnects.labels(self.camera.id).inc()
        now = self.clock()
        start = self._last_end or now
        if not self._down:
            log.warning("%s; recording stopped, retrying", fault)
            if (not self._first_segment_seen and start < self._started_at - CONTIGUOUS_TOLERANCE
                    and not self._gaps.has_open()):
                # the camera was already down when this agent started: before that, no agent ran
                self._gaps.add(start, self._started_at, GapCause.NOT_RECORDED,
                               "no recorder was running for this camera")
                start = self._started_at
            self._gaps.open(start, fault.cause, fault.detail)
            self._down = True
            self._fault = fault
        else:
            log.info("%s; still retrying", fault)
            if self._more_telling(fault):
                self._gaps.update(fault.detail)
                self._fault = fault
            else:
                self._gaps.flush()

    def _more_telling(self, fault: Fault) -> bool:
        """Whether ``fault`` should replace the open gap's reason: only same-cause news that names a specific
        camera fault replaces a generic one ("stream stopped: ..." never overwrites "disk full")."""
        current = self._fault
        if current is None:
            return True
        if fault.cause != current.cause:
            return False
        specific = type(fault.camera_error) is not CameraError
        return specific and (type(current.camera_error) is CameraError or fault.detail != current.detail)

    def _cause_cleared(self) -> bool:
        """The cheap re-check of the current fault: True when it is worth restarting ffmpeg now."""
        fault = self._fault
        if fault is None:
            return False
        if fault.cause == GapCause.DISK_FULL:
            try:
                return shutil.disk_usage(self.camera_dir.parent).free >= MIN_FREE_BYTES
            except OSError:
                return False
        if isinstance(fault.camera_error, CameraUnreachableError):
            return port_answers(self.camera.rtsp_url)
        return False

    def _wait_before_restart(self) -> None:
        delay = self._backoff.next_delay()
        fault = self._fault
        probe = fault is not None and (fault.cause == GapCause.DISK_FULL
                                       or isinstance(fault.camera_error, CameraUnreachableError))
        if not probe:
            delay = min(delay, RECHECK_CAP_SECONDS)  # nothing cheap to probe: retry soon instead
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._stop.wait(min(KNOCK_SECONDS, remaining)):
                return
            if self.source is not None and self.source.ready():
                return
            if self.source is None and probe and self._cause_cleared():
                log.info("camera %s: %s cleared; restarting the recorder now", self.camera.id,
                         fault.cause if fault else "fault")
                return
