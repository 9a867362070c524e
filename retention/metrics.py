"""Prometheus metrics of the retention service (names fixed by the retention issue)."""

from __future__ import annotations

from jifang.retention.coverage import PointAudit
from prometheus_client import CollectorRegistry, Counter, Gauge

from jifang.domain import GapCause


class RetentionMetrics:
    def __init__(self, metrics_registry: CollectorRegistry | None = None) -> None:
        self.metrics_registry = metrics_registry or CollectorRegistry()  # Prometheus's, not the cameras'
        r = self.metrics_registry
        self.compliant = Gauge("jifang_retention_compliant", "1 when the point meets its retention floor",
                               ["camera", "tier"], registry=r)
        self.coverage = Gauge("jifang_retention_coverage_ratio", "Covered share of the required window",
                              ["camera"], registry=r)
        self.gap_seconds = Gauge("jifang_retention_gap_seconds", "Seconds without video in the required window",
                                 ["camera", "cause"], registry=r)
        self.lock_margin = Gauge("jifang_retention_min_lock_margin_seconds",
                                 "Shortest stored lock minus what the tier asks", ["camera"], registry=r)
        self.job_success = Gauge("jifang_retention_job_last_success_timestamp",
                                 "Unix time of the job's last success", ["job"], registry=r)
        self.job_failure = Gauge("jifang_retention_job_last_failure_timestamp",
                                 "Unix time of the job's last failure", ["job"], registry=r)
        self.deleted = Counter("jifang_retention_objects_deleted_total", "Objects deleted after their maximum",
                               registry=r)
        self.camera_info = Gauge("jifang_retention_point_info", "1 per audited point, labelled with its grid and tier",
                                 ["camera", "grid", "tier"], registry=r)
        self.leader = Gauge("jifang_retention_leader", "1 while this process runs the retention jobs", registry=r)

    def publish(self, audits: list[PointAudit]) -> None:
        # start from empty label sets: a camera whose tier changed or that was removed must not keep its old series
        for gauge in (self.compliant, self.coverage, self.gap_seconds, self.lock_margin, self.camera_info):
            gauge.clear()
        for audit in audits:
            self.camera_info.labels(audit.camera, audit.grid, audit.tier).set(1)
            self.compliant.labels(audit.camera, audit.tier).set(1 if audit.compliant else 0)
            self.coverage.labels(audit.camera).set(audit.coverage)
            per_cause: dict[str, float] = {}
            for gap in audit.gaps:
                per_cause[str(gap.cause)] = per_cause.get(str(gap.cause), 0.0) + gap.seconds
            for cause in GapCause:
                if cause is not GapCause.BEFORE_REGISTRATION:  # outside the window: not applicable
                    self.gap_seconds.labels(audit.camera, str(cause)).set(per_cause.get(str(cause), 0.0))
            if audit.min_lock_margin_seconds is not None:
                self.lock_margin.labels(audit.camera).set(audit.min_lock_margin_seconds)
