"""The edge agent: records every enabled camera of the configuration until told to stop.

Start: migrate the catalog, reach the object store (retrying, and saying so), spool whatever a previous run
left behind (even after SIGKILL), check each camera once (a wrong password is a configuration error), then
record. Stop (SIGTERM/SIGINT): every ffmpeg closes its current segment, the spool is uploaded within a
deadline, and what is left stays spooled for the next start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from datetime import datetime

from jifang.edge.fleet import FleetMember
from jifang.edge.health import HealthChecker
from jifang.recognition.metrics import RecognitionMetrics
from jifang.recorder import CameraRecorder, RecorderMetrics, SegmentSink, Spool, Uploader, check_stream
from jifang.recorder.ffmpeg import url_with_credentials
from jifang.retention.service import RetentionService
from prometheus_client import start_http_server

from jifang.config import CameraConfig, Settings
from jifang.db import Catalog
from jifang.errors import (
    CameraStreamNotFoundError,
    CameraUnauthorizedError,
    CameraUnreachableError,
    ConfigError,
)
from jifang.registry import Registry, open_registry
from jifang.store import ObjectStore, connect_store
from jifang.store.base import utc_now

log = logging.getLogger("jifang.edge")


class EdgeAgent:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now,
                 metrics: RecorderMetrics | None = None, preflight: bool = True, agent_id: str | None = None) -> None:
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
        self.recorders: dict[str, CameraRecorder] = {}  # running, by camera ID
        self.fleet: FleetMember | None = None
        self.recognizers: dict = {}
        self._recognition: dict | None = None
        self._deliverer = None
        self._eligible: dict[str, CameraConfig] = {}
        self._passwords_by_camera: dict[str, str | None] = {}
        self._sink: SegmentSink | None = None
        self.agent_id = agent_id or os.environ.get("JIFANG_AGENT_ID") or f"{socket.gethostname()}:{os.getpid()}"
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
        self._sink = SegmentSink(self.spool, self.catalog, self.metrics, self.uploader.enqueue,
                                 self.settings.recorder.ffprobe, self.clock)
        self._passwords_by_camera = passwords
        # cameras pinned to another site are left to that site's agents
        self._eligible = {c.id: c for c in self.settings.cameras
                          if c.enabled and (c.site is None or c.site == self.settings.site)}
        for camera in self._eligible.values():
            self.metrics.camera_info.labels(camera.id, camera.grid, str(camera.tier), self.settings.site).set(1)
        self._recover()

    def _make_recorder(self, camera_id: str) -> CameraRecorder:
        assert self.spool is not None and self._sink is not None
        camera = self._eligible[camera_id]
        return CameraRecorder(camera, camera.grid, self.settings.recorder, self._sink, self.catalog, self.metrics,
                              self.spool.recording_dir / camera.id, self._passwords_by_camera.get(camera.id),
                              self.clock, on_status=self._status_changed)

    def _start_camera(self, camera_id: str) -> None:
        if camera_id in self.recorders:
            return
        recorder = self._make_recorder(camera_id)
        self.recorders[camera_id] = recorder
        recorder.start()
        if self._eligible[camera_id].recognize:
            self._start_recognition(camera_id)

    def _stop_camera(self, camera_id: str) -> None:
        recognizer = self.recognizers.pop(camera_id, None)
        if recognizer is not None:
            recognizer.stop()
        recorder = self.recorders.pop(camera_id, None)
        if recorder is not None:
            recorder.request_stop()
            recorder.join(30)

    def _start_recognition(self, camera_id: str) -> None:
        """Plate and face recognition on the camera's sub-stream (models loaded once, on first use)."""
        # deferred: recognition (numpy, OpenCV, onnxruntime) loads only when a camera has it switched on
        from jifang.recognition.runtime import CameraRecognizer

        camera = self._eligible[camera_id]
        pipelines = self._pipelines()
        url = url_with_credentials(camera.sub_rtsp_url or camera.rtsp_url, camera.username,
                                   self._passwords_by_camera.get(camera_id))
        recognizer = CameraRecognizer(camera, url, self.settings, pipelines["reporter"], pipelines["watchlist"],
                                      pipelines["metrics"], plate_reader=pipelines.get("plate"),
                                      face_engine=pipelines.get("face"), clock=self.clock)
        self.recognizers[camera_id] = recognizer
        recognizer.start()

    def _pipelines(self) -> dict:
        if self._recognition is not None:
            return self._recognition
        # deferred: numpy (watchlist, reporting) and requests/paho (delivery), only when recognition runs
        from jifang.recognition.delivery import Deliverer
        from jifang.recognition.reporting import IncidentReporter
        from jifang.recognition.watchlist import Watchlist

        assert self.store is not None
        retention = RetentionService(self.settings, self.catalog, self.store, self.clock)
        pipelines: dict = {
            "metrics": RecognitionMetrics(self.metrics.registry),
            "watchlist": Watchlist(self.catalog),
            "reporter": IncidentReporter(self.settings, self.catalog, self.store, self.clock,
                                         hold=lambda cam, start, end, reason: retention.hold(
                                             cam, start, end, reason, actor="system")),
        }
        kinds = {kind for camera in self._eligible.values() for kind in camera.recognize}
        models = self.settings.recognition.models_dir
        try:
            if "plate" in kinds:  # the readers load onnxruntime and OpenCV: only for the kinds in use
                from jifang.recognition.plates.reader import PlateReader

                pipelines["plate"] = PlateReader(models)
            if "face" in kinds:
                from jifang.recognition.faces.engine import FaceEngine

                pipelines["face"] = FaceEngine(models / "packs" / "jifang_sface")
        except Exception as exc:  # missing models: recording goes on, recognition is reported as unavailable
            log.error("recognition unavailable (%s); run 'jifang models fetch --dir %s'", exc, models)
        self._deliverer = Deliverer(self.settings, self.catalog, self.clock, self.metrics.registry)
        self._deliverer.start()
        self._recognition = pipelines
        return pipelines

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
        saved = 0
        for camera_id in self._eligible:
            if (self.spool.recording_dir / camera_id).is_dir():
                saved += self._make_recorder(camera_id).recover_previous_runs()
        for folder in self.spool.recording_dir.iterdir():
            if folder.is_dir() and folder.name not in self._eligible and any(folder.glob("run-*")):
                log.warning("%s holds recordings of camera %s, which this agent no longer records; they are kept "
                            "until it does", folder, folder.name)
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
        lease_seconds = self.settings.recorder.lease_seconds
        if lease_seconds is None:
            for camera_id in self._eligible:
                self._start_camera(camera_id)
        else:
            self.fleet = FleetMember(self.catalog, self.agent_id, self.settings.site, sorted(self._eligible),
                                     lease_seconds, self.clock, self._start_camera, self._stop_camera)
            self.fleet.start()
        if self.registry is not None and any(c.onvif_endpoint for c in self.registry.cameras(enabled_only=True)):
            self._health = HealthChecker(self.registry, self.clock)
            self._health.start()
        log.info("recording %d of %d cameras to %s storage%s", len(self.recorders), len(self._eligible),
                 self.settings.storage.kind, f" (fleet member {self.agent_id})" if self.fleet else "")

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
        if self.fleet is not None:
            self.fleet.stop()  # stops its cameras and hands their leases back
        for camera_id in list(self.recognizers):
            self.recognizers.pop(camera_id).stop()
        if self._deliverer is not None:
            self._deliverer.stop()
        recorders = list(self.recorders.values())
        for recorder in recorders:
            recorder.request_stop()
        for recorder in recorders:
            recorder.join(30)
        self.recorders.clear()
        left = self.uploader.stop(drain_seconds) if self.uploader else 0
        if left:
            log.warning("%d segments stay in the spool and upload at the next start", left)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.catalog.dispose()
        return left
