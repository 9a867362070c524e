"""The GB/T 28181 platform beside the edge agent: the SIP server, and one recorder per assigned channel.

Assigned channels are cameras of the registry (``gb28181://DEVICE/CHANNEL``); the edge agent leaves them to
this service, which records them with the agent's own sink (validation, spool, upload with locks, catalog)
through the recorder's input-source hook. Assignments made while it runs are picked up within seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from jifang.gb28181.devices import DeviceStore, split_channel_url
from jifang.gb28181.media import GbMediaSource, PortPool, SsrcPool
from jifang.gb28181.metrics import GbMetrics
from jifang.gb28181.server import SipServer
from jifang.recorder import CameraRecorder, RecorderMetrics, SegmentSink
from prometheus_client import CollectorRegistry

from jifang.config import CameraConfig, Gb28181Config, RecorderConfig
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.tiers import Tier

log = logging.getLogger("jifang.gb28181")

SCAN_SECONDS = 3.0


class GbPlatform:
    def __init__(self, config: Gb28181Config, catalog: Catalog, box: SecretBox | None,
                 registry: CollectorRegistry, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = DeviceStore(catalog, box)
        self.metrics = GbMetrics(registry)
        self.sip = SipServer(config, self.store, self.metrics, clock)
        self.ports = PortPool(config.media_host, config.rtp_port_min, config.rtp_port_max)
        self.ssrcs = SsrcPool(config.domain)
        self.sources: dict[str, GbMediaSource] = {}
        self.sip.on_offline.append(self._device_offline)
        self.sip.on_bye.append(self._device_bye)

    def start(self) -> int:
        return self.sip.start()

    def stop(self) -> None:
        self.sip.stop()

    def source(self, device_id: str, channel_id: str) -> GbMediaSource:
        source = self.sources.get(channel_id)
        if source is None:
            source = self.sources[channel_id] = GbMediaSource(self, device_id, channel_id)
        return source

    def _device_offline(self, device_id: str) -> None:
        for source in list(self.sources.values()):
            if source.device_id == device_id:
                source.device_offline()

    def _device_bye(self, call_id: str) -> None:
        for source in list(self.sources.values()):
            source.device_bye(call_id)


class GbRecording:
    """Keeps one CameraRecorder running per assigned, enabled channel."""

    def __init__(self, platform: GbPlatform, config: RecorderConfig, sink: SegmentSink, catalog: Catalog,
                 metrics: RecorderMetrics, recording_dir: Path, clock: Callable[[], datetime],
                 on_status: Callable[[str, str, str], None] | None = None, site: str = "default") -> None:
        self.platform = platform
        self.config = config
        self.sink = sink
        self.catalog = catalog
        self.metrics = metrics
        self.recording_dir = recording_dir
        self.clock = clock
        self.on_status = on_status
        self.site = site
        self.recorders: dict[str, CameraRecorder] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gb-recording", daemon=True)

    def start(self) -> None:
        self.scan()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        CameraRecorder.stop_all(list(self.recorders.values()))
        self.recorders.clear()

    def _loop(self) -> None:
        while not self._stop.wait(SCAN_SECONDS):
            try:
                self.scan()
            except Exception:  # a database hiccup: try again at the next scan
                log.exception("GB/T 28181: scanning assigned channels failed")

    def scan(self) -> None:
        wanted = {row.id: row for row in self.platform.store.assigned().values() if row.enabled}
        for camera_id in set(self.recorders) - set(wanted):
            recorder = self.recorders.pop(camera_id)
            recorder.request_stop()
            recorder.join(30)
        for camera_id, row in wanted.items():
            if camera_id in self.recorders or self._stop.is_set():
                continue
            device_id, channel_id = split_channel_url(row.main_rtsp_url)
            camera = CameraConfig(id=row.id, name=row.name, grid=row.grid, tier=Tier(row.tier),
                                  rtsp_url=row.main_rtsp_url, registered_at=row.registered_at)
            self.metrics.camera_info.labels(camera.id, camera.grid, str(camera.tier), self.site).set(1)
            recorder = CameraRecorder(camera, camera.grid, self.config, self.sink, self.catalog, self.metrics,
                                      self.recording_dir / camera.id, None, self.clock, on_status=self.on_status,
                                      source=self.platform.source(device_id, channel_id))
            if (self.recording_dir / camera.id).is_dir():
                recorder.recover_previous_runs()
            self.recorders[camera_id] = recorder
            recorder.start()
            log.info("GB/T 28181: recording channel %s of device %s (grid %s, %s tier)", channel_id, device_id,
                     camera.grid, camera.tier)


class GbService:
    """The recorders of the assigned channels as a companion of the edge agent (started after its uploader,
    stopped before it). The SIP server is started earlier, when the agent opens, so that it can say its port."""

    def __init__(self, platform: GbPlatform, recording: GbRecording) -> None:
        self.platform = platform
        self.recording = recording

    def start(self) -> None:
        self.recording.start()

    def stop(self) -> None:
        self.recording.stop()
        self.platform.stop()
