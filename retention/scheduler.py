"""``jifang retention run``: the retention jobs on a schedule, in exactly one process at a time.

Leadership is a lease row in the catalog database (works the same on PostgreSQL and SQLite). The holder's
row is valid for 0.8 lease periods and renewed every quarter period; followers ask every tenth of a period.
So when the leader dies, another process takes over within 0.9 lease periods. Only the leader runs an
APScheduler (jobs persisted in the database job store); every job run records its last start, success and
failure in ``job_runs``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from jifang.retention.metrics import RetentionMetrics
from jifang.retention.service import RetentionService

log = logging.getLogger("jifang.retention")
LEASE = "retention-scheduler"
_SERVICES: dict[str, Scheduler] = {}


def run_job(scheduler_id: str, job: str) -> None:
    """Module-level entry point, so the persisted job store can reference it."""
    scheduler = _SERVICES.get(scheduler_id)
    if scheduler is not None:
        scheduler.run_job(job)


class Scheduler:
    def __init__(self, service: RetentionService, metrics: RetentionMetrics,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self.clock = clock or (lambda: datetime.now(UTC))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.id = uuid.uuid4().hex
        self.lease_seconds = service.settings.retention.lease_seconds
        self.ttl_seconds = 0.8 * self.lease_seconds
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()
        _SERVICES[self.id] = self

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def jobs(self) -> dict[str, Callable[[], object]]:
        return {"enforce": self.service.enforce, "reconcile": self.service.reconcile, "audit": self.audit}

    def audit(self) -> None:
        self.metrics.publish(self.service.audit())

    def run_job(self, job: str) -> None:
        with self._lock:  # one job at a time in this process: they share the catalog and the store
            ledger = self.service.ledger
            if not ledger.try_lease(LEASE, self.holder, self.clock(), self.ttl_seconds):
                log.warning("lost the retention lease; skipping %s", job)
                return
            ledger.job_started(job, self.clock())
            try:
                result = self.jobs()[job]()
            except Exception as exc:
                log.exception("retention job %s failed", job)
                now = self.clock()
                ledger.job_finished(job, now, f"{type(exc).__name__}: {exc}")
                self.metrics.job_failure.labels(job).set(now.timestamp())
                return
            now = self.clock()
            ledger.job_finished(job, now)
            self.metrics.job_success.labels(job).set(now.timestamp())
            if job == "enforce" and result is not None:
                self.metrics.deleted.inc(getattr(result, "deleted", 0))
            log.info("retention job %s done: %s", job, result if result is not None else "ok")

    def _become_leader(self) -> None:
        intervals = self.service.settings.retention.jobs
        store = SQLAlchemyJobStore(engine=self.service.catalog.engine, tablename="scheduler_jobs")
        scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC",
                                        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        scheduler.start(paused=True)
        scheduler.remove_all_jobs()  # jobs belong to this leader's process (its scheduler id)
        for job, seconds in (("enforce", intervals.enforce_seconds), ("reconcile", intervals.reconcile_seconds),
                             ("audit", intervals.audit_seconds)):
            scheduler.add_job(run_job, "interval", seconds=seconds, args=[self.id, job], id=job,
                              next_run_time=datetime.now(UTC), replace_existing=True)
        scheduler.resume()
        self._scheduler = scheduler
        self.metrics.leader.set(1)
        log.info("this process (%s) now runs the retention jobs", self.holder)

    def _step_down(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.metrics.leader.set(0)

    def run(self, stop: threading.Event) -> None:
        """Hold or wait for the lease until ``stop``; run the jobs while holding it."""
        ledger = self.service.ledger
        try:
            while not stop.is_set():
                try:
                    leading = ledger.try_lease(LEASE, self.holder, self.clock(), self.ttl_seconds)
                except Exception:
                    log.exception("cannot reach the catalog to renew the retention lease")
                    leading = False
                if leading and not self.is_leader:
                    self._become_leader()
                elif not leading and self.is_leader:
                    log.warning("retention lease lost; stepping down")
                    self._step_down()
                stop.wait(self.lease_seconds * (0.25 if self.is_leader else 0.1))
        finally:
            self._step_down()
            try:
                ledger.release_lease(LEASE, self.holder)
            except Exception:
                log.exception("could not release the retention lease")
            _SERVICES.pop(self.id, None)
