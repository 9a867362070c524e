"""Prometheus metrics of recognition and incidents (names fixed by the recognition issue). ``metrics_registry``
is Prometheus's collector registry, never the camera registry (``jifang.registry``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class RecognitionMetrics:
    def __init__(self, metrics_registry: CollectorRegistry | None = None) -> None:
        self.metrics_registry = metrics_registry or CollectorRegistry()
        r = self.metrics_registry
        self.frames = Counter("jifang_recognition_frames_total", "Frames analysed", ["camera", "kind"], registry=r)
        self.skipped = Counter("jifang_recognition_frames_skipped_total", "Frames dropped because the models were "
                               "busy (recording is never affected)", ["camera"], registry=r)
        self.inference = Histogram("jifang_recognition_inference_seconds", "Time per frame per pipeline", ["model"],
                                   buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5), registry=r)
        self.hits = Counter("jifang_recognition_hits_total", "Watchlist hits", ["kind", "category"], registry=r)
        self.incidents = Counter("jifang_incidents_total", "Incidents reported or moved to a state",
                                 ["category", "state"], registry=r)


class DeliveryMetrics:
    def __init__(self, metrics_registry: CollectorRegistry | None = None) -> None:
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.failures = Counter("jifang_incident_delivery_failures_total", "Failed incident delivery attempts "
                                "(retried)", ["channel"], registry=self.metrics_registry)
