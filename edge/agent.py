"""The edge agent: records every enabled camera of the registry until told to stop.

Start: migrate the catalog (down: a warning, recording goes to the spool and the catalog is filled from it
when the database answers), check the object store once (down: a warning, recording goes to the spool until it
answers), spool whatever a previous run left behind (even after SIGKILL; one bad item is set aside and
explained, never a reason to exit), check each camera once (a wrong password is a configuration error), then
record. While recording, a cheap registry revision poll (every 2 s) applies added, edited, disabled and removed
cameras without a restart, leaving the others untouched. Stop (SIGTERM/SIGINT): every ffmpeg gets ONE SIGTERM
and closes its current segment, the spool is uploaded within a deadline, and what is left stays spooled for the
next start.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from jifang.edge.fleet import FleetMember
from jifang.edge.health import HealthChecker
from jifang.edge.spoollock import SpoolLock, spool_path
from jifang.recognition.evidence import EvidenceSpool
from jifang.recognition.metrics import RecognitionMetrics
from jifang.recorder import CameraRecorder, RecorderMetrics, SegmentSink, Spool, Uploader, check_stream
from jifang.recorder.ffmpeg import url_with_credentials
from jifang.recorder.spool import stamp_time
from jifang.retention.service import RetentionService
from prometheus_client import start_http_server

from jifang.config import CameraConfig, Settings
from jifang.db import Catalog, custody
from jifang.domain import GapCause, video_key
from jifang.errors import (
    CameraStreamNotFoundError,
    CameraUnauthorizedError,
    CameraUnreachableError,
    CatalogError,
    ConfigError,
    StoreUnavailableError,
)
from jifang.registry import Registry, open_registry
from jifang.store import ObjectStore, open_store_or_defer
from jifang.store.base import utc_now
from jifang.tiers import MediaKind

log = logging.getLogger("jifang.edge")
STREAM_CHECKS_AT_ONCE = 16  # each is an ffprobe process for a few seconds


class EdgeAgent:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now,
                 metrics: RecorderMetrics | None = None, preflight: bool = True, agent_id: str | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or RecorderMetrics()
        self.preflight = preflight
        self.catalog = Catalog(settings.database.url)
        self.spool: Spool | None = None
        self.evidence: EvidenceSpool | None = None
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
        self._named = agent_id or os.environ.get("JIFANG_AGENT_ID") or None  # a named agent has its own spool
        self.agent_id = self._named or f"{socket.gethostname()}:{os.getpid()}"
        self._file_settings = settings  # the declarative seed; cameras come from the registry
        self._spool_lock: SpoolLock | None = None
        self._cameras_lock = threading.RLock()
        self._holds_to_apply: list[tuple[str, datetime, datetime]] = []
        self._revision: tuple | None = None
        self.registry_poll_seconds = 2.0  # changes apply within this plus a camera's restart (well under 10 s)
        self.metrics_port: int | None = None
        self._metrics_server = None
        self._catalog_up = False
        self._stopping = threading.Event()
        # services recording beside the agent through its sink (the GB/T 28181 platform): started after the
        # uploader, stopped before it so that their last segments are uploaded too
        self.companions: list = []

    @property
    def sink(self) -> SegmentSink | None:
        return self._sink

    def open(self) -> None:
        """Everything before recording starts; raises JifangError subclasses for the CLI to report.

        Checks come first and write nothing: secrets, cameras, the store. Then the catalog, the registry (the
        file's grids, teams and cameras are synced into it: from here on the registry is the only source of
        cameras) and the agent's own spool, locked against a second agent."""
        for tool in (self.settings.recorder.ffmpeg, self.settings.recorder.ffprobe):
            if shutil.which(tool) is None:
                raise ConfigError(f"{tool} not found: install ffmpeg (apt-get install ffmpeg) or set recorder.ffmpeg")
        passwords = self._passwords()
        if self.preflight:
            self._check_cameras(self.settings.cameras, passwords)
        self.store = open_store_or_defer(self.settings, self.clock)
        spool_root = spool_path(self.settings.recorder.spool_dir, self._named)
        self._spool_lock = SpoolLock(spool_root, self.agent_id)
        self._spool_lock.acquire()
        self._catalog_up = self._migrate_or_defer()
        self.registry = open_registry(self.settings, self.catalog)
        if self._catalog_up:
            self._sync_registry()
            self.settings, registered = self.registry.merge_into(self._file_settings)
            if self.preflight:
                self._check_cameras([c for c in self.settings.cameras if c.id not in passwords], registered)
            passwords.update(registered)
        self.spool = Spool(spool_root)
        # evidence images are spooled like segments (recognition.evidence); left-overs upload at start
        self.evidence = EvidenceSpool(spool_root / "evidence", self.store)
        self.uploader = Uploader(self.store, self.catalog, self.spool, self.metrics, self.clock,
                                 self.settings.recorder.spool_max_bytes, workers=self.settings.recorder.upload_workers,
                                 on_unreadable_manifest=self._recover_orphan_video)
        self._sink = SegmentSink(self.spool, self.catalog, self.metrics, self.uploader.enqueue,
                                 self.settings.recorder.ffprobe, self.clock)
        self._passwords_by_camera = passwords
        self._eligible = self._eligible_of(self.settings)
        for camera in self._eligible.values():
            self.metrics.camera_info.labels(camera.id, camera.grid, str(camera.tier), self.settings.site).set(1)
        self._recover()

    def _migrate_or_defer(self) -> bool:
        """Migrate the catalog; an unreachable database is a warning, not a reason not to record (the spool is
        the write-ahead log and the catalog is filled from it). A refused login is a configuration error."""
        try:
            self.catalog.migrate(isolated=True)
            return True
        except CatalogError as exc:
            if any(word in str(exc) for word in ("authentication failed", "does not exist", "permission denied")):
                raise
            log.warning("%s; recording the cameras of the configuration file into the spool, the catalog is "
                        "migrated and filled from it when the database answers (cameras known only to the registry "
                        "start at the next start)", exc)
            return False

    def _migrate_when_reachable(self) -> None:
        delay = 2.0
        while not self._stopping.wait(delay):
            try:
                self.catalog.migrate(isolated=True)
            except CatalogError as exc:
                log.debug("catalog still unavailable: %s", exc)
                delay = min(delay * 2, 30.0)
                continue
            self._catalog_up = True
            log.info("catalog database reachable and migrated; spooled segments are catalogued now")
            try:
                self._sync_registry()  # the revision poll then starts the cameras known only to the registry
            except Exception as exc:  # the poll retries: a registry that answers later is applied then
                log.warning("registry sync after the database returned failed: %s", exc)
            return

    def _sync_registry(self) -> None:
        """Upsert the configuration file's grids, teams and cameras into the registry (the declarative seed)."""
        assert self.registry is not None
        report = self.registry.sync(self._file_settings, self.clock())
        if report.added or report.updated:
            log.info("configuration file synced into the registry: %d cameras added, %d updated",
                     len(report.added), len(report.updated))
        self._revision = self.registry.revision()

    def _eligible_of(self, settings: Settings) -> dict[str, CameraConfig]:
        # cameras pinned to another site are left to that site's agents; GB/T 28181 channels (gb28181://) to
        # the GB/T 28181 platform (jifang.gb28181), which records them through the same sink
        return {c.id: c for c in settings.cameras if c.enabled and (c.site is None or c.site == settings.site)
                and not c.rtsp_url.startswith("gb28181:")}

    # live registry changes

    def watch_registry(self) -> bool:
        """Apply registry changes when its revision moved (one aggregate query); True when it did."""
        if self.registry is None:
            return False
        revision = self.registry.revision()
        if revision == self._revision:
            return False
        self._revision = revision
        self.apply_registry()
        return True

    def apply_registry(self) -> None:
        """Start added or enabled cameras, stop removed or disabled ones, restart changed ones (tier, URL,
        password, recognition...). Cameras whose configuration did not change are not touched."""
        assert self.registry is not None
        merged, passwords = self.registry.merge_into(self._file_settings)
        eligible = self._eligible_of(merged)
        with self._cameras_lock:
            before, old_passwords = self._eligible, self._passwords_by_camera
            changed = sorted(cid for cid in before if cid not in eligible or eligible[cid] != before[cid]
                             or passwords.get(cid) != old_passwords.get(cid))
            added = sorted(cid for cid in eligible if cid not in before)
            if not changed and not added:
                self.settings = merged
                return
            running = {cid for cid in changed if cid in self.recorders}
            for camera_id in changed:
                self._stop_camera(camera_id)
                if camera_id not in eligible:
                    self.metrics.camera_info.remove(before[camera_id].id, before[camera_id].grid,
                                                    str(before[camera_id].tier), self.settings.site)
                    if self.fleet is not None:
                        self.fleet.owned.pop(camera_id, None)  # its lease is no longer renewed and expires
            self.settings, self._eligible, self._passwords_by_camera = merged, eligible, passwords
            for camera_id in (*changed, *added):
                if camera_id in eligible:
                    camera = eligible[camera_id]
                    self.metrics.camera_info.labels(camera.id, camera.grid, str(camera.tier), merged.site).set(1)
            if self.fleet is not None:
                self.fleet.cameras = sorted(eligible)  # new cameras are leased at the fleet's next step
                starts = [cid for cid in running if cid in eligible]
            else:
                starts = [cid for cid in (*changed, *added) if cid in eligible]
            for camera_id in starts:
                self._start_camera(camera_id)
        log.info("registry changed: %s", "; ".join(part for part in (
            f"started {', '.join(cid for cid in added if cid in self.recorders)}" if added else "",
            f"stopped {', '.join(cid for cid in changed if cid not in eligible)}"
            if any(cid not in eligible for cid in changed) else "",
            f"restarted {', '.join(cid for cid in changed if cid in eligible)}"
            if any(cid in eligible for cid in changed) else "") if part) or "no camera affected")

    def _make_recorder(self, camera_id: str) -> CameraRecorder:
        assert self.spool is not None and self._sink is not None
        camera = self._eligible[camera_id]
        return CameraRecorder(camera, camera.grid, self.settings.recorder, self._sink, self.catalog, self.metrics,
                              self.spool.recording_dir / camera.id, self._passwords_by_camera.get(camera.id),
                              self.clock, on_status=self._status_changed)

    def _start_camera(self, camera_id: str) -> None:
        with self._cameras_lock:  # the fleet thread and the registry watcher both start and stop cameras
            if camera_id in self.recorders or camera_id not in self._eligible:
                return
            recorder = self._make_recorder(camera_id)
            self.recorders[camera_id] = recorder
            self._custody(custody.begin, camera_id)
            recorder.start()
            if self._eligible[camera_id].recognize:
                self._start_recognition(camera_id)

    def _stop_camera(self, camera_id: str) -> None:
        with self._cameras_lock:
            recognizer = self.recognizers.pop(camera_id, None)
            if recognizer is not None:
                recognizer.stop()
            recorder = self.recorders.pop(camera_id, None)
            if recorder is not None:
                recorder.request_stop()
                recorder.join(30)
                self._custody(custody.end, camera_id)

    def _custody(self, write: Callable[..., None], camera_id: str | None) -> None:
        """Write the custody evidence the retention audit reads (agent_offline, handover); recording goes on even
        when the catalog cannot take it."""
        try:
            write(self.catalog, self.agent_id, camera_id, self.clock())
        except Exception as exc:  # the database may be down: the spool keeps the video, the next beat retries
            log.warning("could not write the custody row of camera %s: %s", camera_id, type(exc).__name__)

    def _start_recognition(self, camera_id: str) -> None:
        """Plate and face recognition on the camera's sub-stream (models loaded once, on first use)."""
        # deferred: recognition (numpy, OpenCV, onnxruntime) loads only when a camera has it switched on
        from jifang.recognition.runtime import CameraRecognizer

        camera = self._eligible[camera_id]
        pipelines = self._pipelines(set(camera.recognize))
        url = url_with_credentials(camera.sub_rtsp_url or camera.rtsp_url, camera.username,
                                   self._passwords_by_camera.get(camera_id))
        recognizer = CameraRecognizer(camera, url, self.settings, pipelines["reporter"], pipelines["watchlist"],
                                      pipelines["metrics"], plate_reader=pipelines.get("plate"),
                                      face_engine=pipelines.get("face"), clock=self.clock)
        self.recognizers[camera_id] = recognizer
        recognizer.start()

    def _pipelines(self, kinds: set[str]) -> dict:
        if self._recognition is None:
            self._recognition = self._open_pipelines()
        self._load_readers(self._recognition, kinds)
        return self._recognition

    def _load_readers(self, pipelines: dict, kinds: set[str]) -> None:
        """Load the plate reader and the face engine the first time a camera needs them (a camera added live
        may be the first to recognize plates)."""
        models = self.settings.recognition.models_dir
        try:
            if "plate" in kinds and "plate" not in pipelines:
                from jifang.recognition.plates.reader import PlateReader

                pipelines["plate"] = PlateReader(models)
            if "face" in kinds and "face" not in pipelines:
                from jifang.recognition.faces.engine import FaceEngine

                pipelines["face"] = FaceEngine(models / "packs" / "jifang_sface")
        except Exception as exc:  # missing models: recording goes on, recognition is reported as unavailable
            log.error("recognition unavailable (%s); run 'jifang models fetch --dir %s'", exc, models)

    def _open_pipelines(self) -> dict:
        from jifang.recognition.delivery import Deliverer
        from jifang.recognition.reporting import IncidentReporter
        from jifang.recognition.watchlist import Watchlist

        assert self.store is not None
        pipelines: dict = {
            "metrics": RecognitionMetrics(self.metrics.metrics_registry),
            "watchlist": Watchlist(self.catalog),
            "reporter": IncidentReporter(self.settings, self.catalog, self.store, self.clock,
                                         hold=self._hold, evidence=self.evidence),
        }
        self._load_readers(pipelines, {kind for camera in self._eligible.values() for kind in camera.recognize})
        self._deliverer = Deliverer(self.settings, self.catalog, self.clock, self.metrics.metrics_registry)
        self._deliverer.start()
        return pipelines

    def _hold(self, camera_id: str, start: datetime, end: datetime, reason: str) -> None:
        """Hold the video around an incident. The hold enters the ledger at once; when the store is down, the
        legal holds of segments it already has are applied once it returns (segments still spooled are held
        by the uploader on arrival)."""

        assert self.store is not None
        service = RetentionService(self.settings, self.catalog, self.store, self.clock)  # the current cameras
        try:
            service.hold(camera_id, start, end, reason, actor="system")
        except StoreUnavailableError as exc:
            log.warning("camera %s: video hold recorded, store unavailable (%s); its locks follow when it returns",
                        camera_id, exc)
            self._holds_to_apply.append((camera_id, start, end))

    def _apply_pending_holds(self) -> None:
        from jifang.retention.ledger import Ledger

        assert self.store is not None
        ledger = Ledger(self.catalog)
        while self._holds_to_apply:
            camera_id, start, end = self._holds_to_apply[0]
            try:
                for row in ledger.segments_in(camera_id, start, end):
                    if row.uploaded_at is not None:
                        self.store.set_legal_hold(MediaKind.VIDEO, row.key, True)
            except StoreUnavailableError:
                return  # still down: the next poll tries again
            ledger.set_held(camera_id, start, end, True)
            self._holds_to_apply.pop(0)
            log.info("camera %s: video hold applied in the store", camera_id)

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
        """Connect to every enabled camera once, all at the same time (one slow or dead camera must not delay
        the start of the others); a wrong password or stream path stops the start."""
        enabled = [camera for camera in cameras if camera.enabled and not camera.rtsp_url.startswith("gb28181:")]
        if not enabled:
            return
        with ThreadPoolExecutor(max_workers=min(STREAM_CHECKS_AT_ONCE, len(enabled)),
                                thread_name_prefix="stream-check") as pool:
            outcomes = list(pool.map(lambda camera: self._check_camera(camera, passwords[camera.id]), enabled))
        refused = [outcome for outcome in outcomes if outcome is not None]
        if refused:
            raise ConfigError(refused[0] + (f" (and {len(refused) - 1} more cameras refused)" if len(refused) > 1
                                            else ""))

    def _check_camera(self, camera: CameraConfig, password: str | None) -> str | None:
        """The refusal to stop for (401, 404), or None; an unreachable camera is recorded when it answers."""
        url = url_with_credentials(camera.rtsp_url, camera.username, password)
        try:
            check_stream(self.settings.recorder.ffprobe, camera.id, url)
        except (CameraUnauthorizedError, CameraStreamNotFoundError) as exc:
            return str(exc)
        except CameraUnreachableError as exc:
            log.warning("%s; it will be recorded as soon as it answers", exc)
        except Exception as exc:
            log.warning("camera %s: stream check failed (%s); recording will retry", camera.id, exc)
        return None

    def _recover(self) -> None:
        """Spool what earlier runs left and queue the spool. Every item is handled on its own: one that cannot
        be recovered is set aside, logged, counted and explained, and never stops the agent."""
        assert self.uploader is not None and self.spool is not None
        saved = 0
        for camera_id in self._eligible:
            if (self.spool.recording_dir / camera_id).is_dir():
                try:
                    saved += self._make_recorder(camera_id).recover_previous_runs()
                except Exception:
                    log.exception("camera %s: recovering its previous runs failed; the files stay in %s", camera_id,
                                  self.spool.recording_dir / camera_id)
        for folder in self.spool.recording_dir.iterdir():
            if folder.is_dir() and folder.name not in self._eligible and any(folder.glob("run-*")):
                log.warning("%s holds recordings of camera %s, which this agent no longer records; they are kept "
                            "until it does", folder, folder.name)
        if saved:
            log.info("spooled %d segments left by a previous run", saved)
        # one listing per camera folder, no manifest read: a pair is queued by its name (camera, capture
        # start) and its manifest read when a worker takes it; an unreadable one is found then and goes the
        # orphan-video way (on_unreadable_manifest)
        found = self.spool.scan(remove_temporary=True)
        for manifest in found.orphan_manifests:
            self._recover_orphan_manifest(manifest)
        for video in found.orphan_videos:
            self._recover_orphan_video(video)
        self.uploader.enqueue_many(found.pending)  # the uploader catalogs, verifies and uploads each (WAL replay)
        if found.pending:
            log.info("%d spooled segments waiting for upload", len(found.pending))

    def _recover_orphan_manifest(self, manifest: Path) -> None:
        """A manifest whose video is gone: an upload that finished just before a crash, or a lost video."""
        assert self.spool is not None
        try:
            segment = self.spool.read_manifest(manifest)
        except Exception as exc:
            self.metrics.spool_orphans.labels("manifest").inc()
            target = self.spool.quarantine(manifest.parent.name, manifest)
            log.error("spool manifest %s is unreadable (%s) and has no video: nothing to upload; kept as %s",
                      manifest, exc, target)
            return
        try:
            row = self.catalog.segment(segment.key)
        except Exception as exc:  # database down: decide at the next start
            log.warning("spool manifest %s has no video; the catalog is unavailable (%s), it stays for the next "
                        "start", manifest, type(exc).__name__)
            return
        if row is not None and row.uploaded_at is not None:
            manifest.unlink(missing_ok=True)  # uploaded and released, but the crash came before the unlink
            return
        self.metrics.spool_orphans.labels("manifest").inc()
        target = self.spool.quarantine(segment.camera_id, manifest)
        detail = f"{segment.key}: spooled video missing, its manifest kept as {target}"
        log.error("spool manifest %s has no video and no upload record; recorded as spool_corrupt", manifest)
        try:
            self.catalog.add_gap(segment.camera_id, segment.capture_start, segment.capture_end,
                                 GapCause.SPOOL_CORRUPT, detail)
        except Exception:
            log.exception("could not record the spool_corrupt gap of %s", segment.key)

    def _recover_orphan_video(self, video: Path) -> None:
        """A spooled video without a readable manifest: its name is its capture start, its content gives the
        rest, so it is spooled again (validated and hashed like any segment); what cannot be is quarantined.
        Called at start for a video without a manifest, and by an upload worker for one whose manifest it
        found unreadable (recovery queues pairs without reading them)."""
        assert self.spool is not None and self._sink is not None
        self.metrics.spool_orphans.labels("video").inc()
        camera = self._eligible.get(video.parent.name)
        manifest = video.with_suffix(".json")
        if manifest.exists():
            kept = self.spool.quarantine(video.parent.name, manifest)
            log.error("spool manifest %s is unreadable; kept as %s, rebuilding it from %s", manifest, kept, video)
        else:
            log.error("spooled video %s has no manifest; rebuilding it", video)
        start = stamp_time(video.name.removesuffix(".mp4"))
        if camera is None or start is None:
            target = self.spool.quarantine(video.parent.name, video)
            log.error("spooled video %s belongs to no camera of this agent or has no capture time in its name; "
                      "kept as %s", video, target)
            return
        end = None
        try:
            row = self.catalog.segment(video_key(camera.id, start))
            if row is not None:  # catalogued when it was recorded: keep its exact interval
                start, end = row.start_at, row.end_at
        except Exception as exc:  # database down: the name and the probed duration are good to the millisecond
            log.warning("catalog unavailable (%s); %s is timed from its name and duration", type(exc).__name__, video)
        try:
            self._sink.accept(camera, camera.grid, video, start, end)  # quarantines it when it fails validation
        except Exception:
            log.exception("rebuilding the manifest of %s failed; it stays in the spool for the next start", video)

    def serve_metrics(self, host: str | None = None, port: int | None = None) -> int:
        host = host or self.settings.metrics.host
        port = self.settings.metrics.port if port is None else port
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.metrics.metrics_registry)
        except OSError as exc:
            raise ConfigError(
                f"metrics endpoint {host}:{port}: {exc.strerror}; choose another --metrics-port") from None
        self._metrics_server = server
        self.metrics_port = server.server_port
        return self.metrics_port

    def start(self) -> None:
        assert self.uploader is not None and self.evidence is not None
        if not self._catalog_up:
            threading.Thread(target=self._migrate_when_reachable, name="catalog-migrate", daemon=True).start()
        self.uploader.start()
        self.evidence.start()
        self._custody(lambda catalog, agent, _camera, _at: custody.close_lapsed(catalog, agent), None)
        self._custody(custody.begin, custody.AGENT)
        lease_seconds = self.settings.recorder.lease_seconds
        if lease_seconds is None:
            for camera_id in self._eligible:
                self._start_camera(camera_id)
        else:
            self.fleet = FleetMember(self.catalog, self.agent_id, self.settings.site, sorted(self._eligible),
                                     lease_seconds, self.clock, self._start_camera, self._stop_camera)
            self.fleet.start()
        if self.registry is not None:  # checks the ONVIF cameras of the registry, also those added later
            self._health = HealthChecker(self.registry, self.clock)
            self._health.start()
        for companion in self.companions:
            companion.start()
        log.info("recording %d of %d cameras to %s storage%s", len(self.recorders), len(self._eligible),
                 self.settings.storage.kind, f" (fleet member {self.agent_id})" if self.fleet else "")

    def run(self, stop: threading.Event) -> None:
        self.start()
        gauges_due = heartbeat_due = 0.0
        while not stop.wait(self.registry_poll_seconds):
            try:
                self.watch_registry()
                self._apply_pending_holds()
            except Exception:  # the catalog may be briefly unreachable: recording goes on, the next poll retries
                log.exception("could not apply registry changes")
            heartbeat_due += self.registry_poll_seconds
            if heartbeat_due + self.registry_poll_seconds > custody.HEARTBEAT_SECONDS:  # never a lapse
                heartbeat_due = 0.0
                try:
                    custody.beat(self.catalog, self.agent_id, self.clock())
                except Exception as exc:
                    log.warning("could not renew the custody heartbeat: %s", type(exc).__name__)
            gauges_due += self.registry_poll_seconds
            if self.uploader is not None and gauges_due >= 5:
                gauges_due = 0.0
                self.uploader.refresh_gauges()
        self.shutdown()

    def shutdown(self, drain_seconds: float = 60.0) -> int:
        """Close every camera's current segment and upload the spool; returns segments left spooled."""
        self._stopping.set()
        if self._health is not None:
            self._health.stop()
        for companion in self.companions:
            companion.stop()
        if self.fleet is not None:
            self.fleet.stop()  # stops its cameras and hands their leases back
        for camera_id in list(self.recognizers):
            self.recognizers.pop(camera_id).stop()
        if self._deliverer is not None:
            self._deliverer.stop()
        if self.evidence is not None:
            self.evidence.stop()
        CameraRecorder.stop_all(list(self.recorders.values()))
        self.recorders.clear()
        self._custody(custody.end, None)
        left = self.uploader.stop(drain_seconds) if self.uploader else 0
        if left:
            log.warning("%d segments stay in the spool and upload at the next start", left)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.catalog.dispose()
        if self._spool_lock is not None:
            self._spool_lock.release()
        return left
