"""Prometheus metrics of the recorder (names fixed by DESIGN.md §3: prefix ``jifang_``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RecorderMetrics:
    def __init__(self, metrics_registry: CollectorRegistry | None = None) -> None:
        self.metrics_registry = metrics_registry or CollectorRegistry()  # Prometheus's, not the cameras'
        r = self.metrics_registry
        self.camera_up = Gauge("jifang_camera_up", "1 while the camera's stream is being recorded", ["camera"],
                               registry=r)
        self.reconnects = Counter("jifang_camera_reconnects_total", "Recorder restarts after a stream failure",
                                  ["camera"], registry=r)
        self.recorded = Counter("jifang_segments_recorded_total", "Segments validated and spooled", ["camera"],
                                registry=r)
        self.uploaded = Counter("jifang_segments_uploaded_total", "Segments stored in the object store", ["camera"],
                                registry=r)
        self.upload_failures = Counter("jifang_segment_upload_failures_total", "Failed upload attempts (retried)",
                                       ["camera"], registry=r)
        self.dropped = Counter("jifang_segments_dropped_total", "Segments lost before reaching the spool (must stay 0)",
                               ["camera"], registry=r)
        self.quarantined = Counter("jifang_segments_quarantined_total",
                                   "Segments that failed validation, kept in the quarantine folder", ["camera"],
                                   registry=r)
        self.upload_lag = Gauge("jifang_upload_lag_seconds", "Age of the oldest segment not yet uploaded",
                                ["camera"], registry=r)
        self.spool_bytes = Gauge("jifang_spool_bytes", "Bytes waiting in the spool", registry=r)
        self.spool_limit = Gauge("jifang_spool_limit_bytes", "Configured spool alarm size", registry=r)
        self.spool_full = Gauge("jifang_spool_full", "1 while the spool holds more than its limit", registry=r)
        self.camera_info = Gauge("jifang_camera_info", "1 per camera, labelled with its grid, tier and site (join on "
                                 "camera for per-grid views)", ["camera", "grid", "tier", "site"], registry=r)
        self.clock_steps = Counter("jifang_clock_steps_total", "Wall-clock steps seen in a camera's recording "
                                   "(segment times disagreeing with the monotonic clock)", ["camera"], registry=r)
        self.spool_orphans = Counter("jifang_spool_orphans_total", "Spool files found at start without their "
                                     "partner (kind: manifest = manifest without video, video = video without a "
                                     "readable manifest)", ["kind"], registry=r)
        self.recorded_seconds = Counter("jifang_recorded_seconds_total", "Seconds of video spooled", ["camera"],
                                        registry=r)
