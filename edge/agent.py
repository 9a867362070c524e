"""The edge agent: records every enabled camera of the configuration until told to stop.

Start: migrate the catalog, reach the object store (retrying, and saying so), spool whatever a previous run
left behind (even after SIGKILL), check each camera once (a wrong password is a configuration error), then
record. Stop (SIGTERM/SIGINT): every ffmpeg closes its current segment, the spool is uploaded within a
deadline, and what is left stays spooled for the next start.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import start_http_server

from jifang.config import CameraConfig, Settings
from jifang.db import Catalog
from jifang.errors import (
    CameraStreamNotFoundError,
    CameraUnauthorizedError,
    CameraUnreachableError,
    ConfigError,
    StoreUnavailableError,
)
from jifang.registry import Registry, open_registry
from jifang.store import ObjectStore, open_store
from jifang.store.base import utc_now
from recorder import CameraRecorder, RecorderMetrics, SegmentSink, Spool, Uploader, check_stream

log = logging.getLogger("jifang.edge")


def connect_store(settings: Settings, clock: Callable[[], datetime] = utc_now,
                  retry_delay: float = 2.0) -> ObjectStore:
    """Open the configured store and make sure its buckets lock objects, retrying while it is unreachable."""
    store = open_store(settings.storage, clock=clock)
    attempts = 1 + (settings.storage.minio.connect_retries if settings.storage.minio else 0)
    for attempt in range(1, attempts + 1):
        try:
            store.ensure_ready()
            return store
        except StoreUnavailableError as exc:
            if attempt == attempts:
                raise StoreUnavailableError(f"{exc} (gave up after {attempts} attempts)") from None
            delay = retry_delay * attempt
            log.warning("%s; retrying in %.0f s (attempt %d of %d)", exc, delay, attempt, attempts)
            time.sleep(delay)
    raise AssertionError("unreachable")


class EdgeAgent:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now,
                 metrics: RecorderMetrics | None = None, preflight: bool = True) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or RecorderMetrics()
        self.preflight = preflight
        self.catalog = Catalog(settings.database.url)
        self.spool: Spool | None = None
        self.store: ObjectStore | None = None
        self.registry: Registry | None = None
        self._health = None
        self.uploader: Uploader | None = None
        self.recorders: list[CameraRecorder] = []
        self.metrics_port: int | None = None
        self._metrics_server = None

    def open(self) -> None:
        """Everything before recording starts; raises JifangError subclasses for the CLI to report.

        Checks come first and write nothing: secrets, cameras, the store; only then the catalog and spool."""
        for tool in (self.settings.recorder.ffmpeg, self.settings.recorder.ffprobe):
            if shutil.which(tool) is None:
                raise ConfigError(f"{tool} not found: install ffmpeg (apt-get install ffmpeg) or set recorder.ffmpeg")
        passwords = self._passwords()
        if self.preflight:
            self._check_cameras(self.settings.cameras, passwords)
        self.store = connect_store(self.settings, self.clock)
        self.catalog.migrate()
        self.registry = open_registry(self.settings, self.catalog)
        file_cameras = {camera.id for camera in self.settings.cameras}
        self.settings, registered = self.registry.merge_into(self.settings)
        passwords.update(registered)
        if self.preflight and registered:
            self._check_cameras([c for c in self.settings.cameras if c.id not in file_cameras], passwords)
        self.spool = Spool(self.settings.recorder.spool_dir)
        self.uploader = Uploader(self.store, self.catalog, self.spool, self.metrics, self.clock,
                                 self.settings.recorder.spool_max_bytes)
        sink = SegmentSink(self.spool, self.catalog, self.metrics, self.uploader.enqueue,
                           self.settings.recorder.ffprobe, self.clock)
        for camera in self.settings.cameras:
            if not camera.enabled:
                continue
            self.recorders.append(CameraRecorder(
                camera, camera.grid, self.settings.recorder, sink, self.catalog, self.metrics,
                self.spool.recording_dir / camera.id, passwords[camera.id], self.clock,
                on_status=self._status_changed,
            ))
        self._recover()

    def _status_changed(self, camera_id: str, status: str, detail: str) -> None:
        try:
            if self.registry is not None:
                self.registry.set_status(camera_id, status, detail, self.clock())
        except Exception:  # the registry status is informative; recording goes on regardless
            log.exception("camera %s: could not record status %s", camera_id, status)

    def _passwords(self) -> dict[str, str | None]:
        return {
            camera.id: camera.password.read(f"camera {camera.id} password") if camera.password else None
            for camera in self.settings.cameras
        }

    def _check_cameras(self, cameras: list[CameraConfig], passwords: dict[str, str | None]) -> None:
        from recorder.ffmpeg import url_with_credentials

        for camera in cameras:
            if not camera.enabled:
                continue
            url = url_with_credentials(camera.rtsp_url, camera.username, passwords[camera.id])
            try:
                check_stream(self.settings.recorder.ffprobe, camera.id, url)
            except (CameraUnauthorizedError, CameraStreamNotFoundError) as exc:
                raise ConfigError(str(exc)) from None
            except CameraUnreachableError as exc:
                log.warning("%s; it will be recorded as soon as it answers", exc)
            except Exception as exc:
                log.warning("camera %s: stream check failed (%s); recording will retry", camera.id, exc)

    def _recover(self) -> None:
        assert self.uploader is not None and self.spool is not None
        saved = sum(recorder.recover_previous_runs() for recorder in self.recorders)
        if saved:
            log.info("spooled %d segments left by a previous run", saved)
        for manifest in self.spool.orphan_manifests():
            key = self._manifest_key(manifest)
            row = self.catalog.segment(key) if key else None
            if row is not None and row.uploaded_at is not None:
                manifest.unlink(missing_ok=True)
            else:
                log.error("spool manifest %s has no video and no upload record", manifest)
        pending = self.spool.pending()
        for item in pending:
            self.catalog.add_segment(item.segment, recorded_at=self.clock())
            self.uploader.enqueue(item)
        if pending:
            log.info("%d spooled segments waiting for upload", len(pending))

    @staticmethod
    def _manifest_key(manifest) -> str | None:  # type: ignore[no-untyped-def]
        import json

        try:
            return json.loads(manifest.read_text(encoding="utf-8"))["key"]
        except (OSError, ValueError, KeyError):
            return None

    def serve_metrics(self, host: str | None = None, port: int | None = None) -> int:
        host = host or self.settings.metrics.host
        port = self.settings.metrics.port if port is None else port
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.metrics.registry)
        except OSError as exc:
            raise ConfigError(
                f"metrics endpoint {host}:{port}: {exc.strerror}; choose another --metrics-port") from None
        self._metrics_server = server
        self.metrics_port = server.server_port
        return self.metrics_port

    def start(self) -> None:
        assert self.uploader is not None
        self.uploader.start()
        for recorder in self.recorders:
            recorder.start()
        if self.registry is not None and any(c.onvif_endpoint for c in self.registry.cameras(enabled_only=True)):
            from edge.health import HealthChecker

            self._health = HealthChecker(self.registry, self.clock)
            self._health.start()
        log.info("recording %d cameras to %s storage", len(self.recorders), self.settings.storage.kind)

    def run(self, stop: threading.Event) -> None:
        self.start()
        while not stop.wait(5):
            if self.uploader is not None:
                self.uploader.refresh_gauges()
        self.shutdown()

    def shutdown(self, drain_seconds: float = 60.0) -> int:
        """Close every camera's current segment and upload the spool; returns segments left spooled."""
        if self._health is not None:
            self._health.stop()
        for recorder in self.recorders:
            recorder.request_stop()
        for recorder in self.recorders:
            recorder.join(30)
        left = self.uploader.stop(drain_seconds) if self.uploader else 0
        if left:
            log.warning("%d segments stay in the spool and upload at the next start", left)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.catalog.dispose()
        return left
