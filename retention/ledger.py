"""Retention's reads and writes in the catalog database: audit log, legal holds, job runs, leases, lock
status, and the segment queries the jobs need. Decisions live in ``policy`` and ``coverage``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from jifang.retention.coverage import Custody
from sqlalchemy import func, select, update

from jifang import audit
from jifang.db import Catalog, custody, leases
from jifang.db.models import (
    AuditEntry,
    CoverageDay,
    CoverageSpan,
    CustodyRow,
    GapRow,
    JobRun,
    Lease,
    LegalHold,
    LockStatus,
    SegmentRow,
)
from jifang.domain import GapCause


class Ledger:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # audit log (append-only)

    def audit(self, at: datetime, actor: str, action: str, target: str, detail: str = "",
              grid: str | None = None) -> None:
        audit.record(self.catalog, at, actor, action, target, grid=grid, detail=detail)

    def audit_entries(self, action: str | None = None) -> list[AuditEntry]:
        with self.catalog.session() as session:
            query = select(AuditEntry).order_by(AuditEntry.id)
            if action:
                query = query.where(AuditEntry.action == action)
            return list(session.scalars(query))

    # legal holds

    def add_hold(self, camera_id: str, start: datetime, end: datetime, reason: str, actor: str,
                 at: datetime) -> LegalHold:
        with self.catalog.session() as session:
            hold = LegalHold(camera_id=camera_id, start_at=start, end_at=end, reason=reason, created_by=actor,
                             created_at=at)
            session.add(hold)
            session.commit()
            return hold

    def release_hold(self, hold_id: int, actor: str, at: datetime) -> LegalHold | None:
        with self.catalog.session() as session:
            hold = session.get(LegalHold, hold_id)
            if hold is None or hold.released_at is not None:
                return None
            hold.released_by, hold.released_at = actor, at
            session.commit()
            return hold

    def active_holds(self, camera_id: str | None = None) -> list[LegalHold]:
        with self.catalog.session() as session:
            query = select(LegalHold).where(LegalHold.released_at.is_(None)).order_by(LegalHold.id)
            if camera_id:
                query = query.where(LegalHold.camera_id == camera_id)
            return list(session.scalars(query))

    def set_held(self, camera_id: str, start: datetime, end: datetime, held: bool) -> None:
        with self.catalog.session() as session:
            session.execute(update(SegmentRow).where(
                SegmentRow.camera_id == camera_id, SegmentRow.end_at > start, SegmentRow.start_at < end,
            ).values(held=held))
            session.commit()

    # segments for the jobs

    def segments_in(self, camera_id: str, start: datetime, end: datetime) -> list[SegmentRow]:
        with self.catalog.session() as session:
            return list(session.scalars(select(SegmentRow).where(
                SegmentRow.camera_id == camera_id, SegmentRow.end_at > start, SegmentRow.start_at < end,
                SegmentRow.deleted_at.is_(None),
            ).order_by(SegmentRow.start_at)))

    def to_verify(self, camera_id: str, tier: str, limit: int) -> list[SegmentRow]:
        """Uploaded, live segments whose lock was never read back, or whose tier differs from the camera's."""
        with self.catalog.session() as session:
            return list(session.scalars(select(SegmentRow).where(
                SegmentRow.camera_id == camera_id, SegmentRow.uploaded_at.is_not(None),
                SegmentRow.deleted_at.is_(None),
                (SegmentRow.verified_at.is_(None)) | (SegmentRow.tier != tier),
            ).order_by(SegmentRow.start_at).limit(limit)))

    def record_verified(self, key: str, tier: str, lock_until: datetime | None, retain_until: datetime,
                        at: datetime) -> None:
        with self.catalog.session() as session:
            session.execute(update(SegmentRow).where(SegmentRow.key == key).values(
                tier=tier, lock_until=lock_until, retain_until=retain_until, verified_at=at))
            session.commit()

    def min_lock_margin(self, camera_id: str, since: datetime) -> float | None:
        """Shortest (store lock - required lock) in seconds over the camera's live, verified segments ending
        after ``since``; None when none was verified yet."""
        with self.catalog.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                margin = func.extract("epoch", SegmentRow.lock_until - SegmentRow.retain_until)
            else:
                margin = (func.julianday(SegmentRow.lock_until) - func.julianday(SegmentRow.retain_until)) * 86400
            value = session.scalar(select(func.min(margin)).where(
                SegmentRow.camera_id == camera_id, SegmentRow.end_at > since, SegmentRow.deleted_at.is_(None),
                SegmentRow.verified_at.is_not(None), SegmentRow.lock_until.is_not(None),
            ))
            return None if value is None else round(float(value), 3)

    def expiry_candidates(self, camera_id: str, before: datetime, limit: int = 10_000) -> list[SegmentRow]:
        with self.catalog.session() as session:
            return list(session.scalars(select(SegmentRow).where(
                SegmentRow.camera_id == camera_id, SegmentRow.deleted_at.is_(None),
                SegmentRow.held.is_(False), SegmentRow.retain_until <= before,
            ).order_by(SegmentRow.start_at).limit(limit)))

    def mark_deleted(self, key: str, at: datetime) -> None:
        with self.catalog.session() as session:
            session.execute(update(SegmentRow).where(SegmentRow.key == key).values(deleted_at=at))
            session.commit()

    def stale_uploads(self, camera_id: str, recorded_before: datetime) -> list[SegmentRow]:
        with self.catalog.session() as session:
            return list(session.scalars(select(SegmentRow).where(
                SegmentRow.camera_id == camera_id, SegmentRow.uploaded_at.is_(None),
                SegmentRow.recorded_at < recorded_before, SegmentRow.deleted_at.is_(None),
            )))

    def iter_day_keys(self, camera_id: str, day_start: datetime) -> dict[str, SegmentRow]:
        with self.catalog.session() as session:
            rows = session.scalars(select(SegmentRow).where(
                SegmentRow.camera_id == camera_id, SegmentRow.start_at >= day_start,
                SegmentRow.start_at < day_start + timedelta(days=1), SegmentRow.deleted_at.is_(None),
            ))
            return {row.key: row for row in rows}

    def camera_days(self, camera_id: str) -> list[CoverageDay]:
        with self.catalog.session() as session:
            return list(session.scalars(select(CoverageDay).where(CoverageDay.camera_id == camera_id)
                                        .order_by(CoverageDay.day)))

    # gap ledger rows written by the jobs (one per cause and object; idempotent)

    def record_loss(self, camera_id: str, start: datetime, end: datetime, cause: GapCause, detail: str) -> bool:
        with self.catalog.session() as session:
            exists = session.scalar(select(GapRow.id).where(
                GapRow.camera_id == camera_id, GapRow.start_at == start, GapRow.cause == str(cause)))
            if exists is not None:
                return False
            session.add(GapRow(camera_id=camera_id, start_at=start, end_at=end, cause=str(cause), detail=detail))
            session.commit()
            return True

    def clear_loss(self, camera_id: str, start: datetime, cause: GapCause) -> None:
        with self.catalog.session() as session:
            for row in session.scalars(select(GapRow).where(
                    GapRow.camera_id == camera_id, GapRow.start_at == start, GapRow.cause == str(cause))):
                session.delete(row)
            session.commit()

    def gaps_in(self, camera_id: str, start: datetime, end: datetime, now: datetime) -> list[GapRow]:
        with self.catalog.session() as session:
            rows = list(session.scalars(select(GapRow).where(
                GapRow.camera_id == camera_id, GapRow.start_at < end,
                (GapRow.end_at.is_(None)) | (GapRow.end_at > start),
            ).order_by(GapRow.start_at)))
        for row in rows:
            if row.end_at is None:  # an outage still going on counts up to now
                row.end_at = now
        return rows

    # the audit's reads: every point at once, a constant number of queries, grouped in memory

    @staticmethod
    def _only(query, column, cameras: Sequence[str] | None):  # type: ignore[no-untyped-def]
        # a long IN list costs more than filtering in memory (and SQLite caps bound parameters)
        return query.where(column.in_(list(cameras))) if cameras is not None and len(cameras) <= 500 else query

    def spans_by_camera(self, cameras: Sequence[str] | None, start: datetime,
                        end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        out: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
        # Core, not the ORM session: a city's spans are ~10^5 plain tuples, the ORM's row loading doubled the time
        with self.catalog.engine.connect() as conn:
            query = select(CoverageSpan.camera_id, CoverageSpan.start_at, CoverageSpan.end_at).where(
                CoverageSpan.end_at > start, CoverageSpan.start_at < end)
            for camera_id, s, e in conn.execute(self._only(query, CoverageSpan.camera_id, cameras)).all():
                out[camera_id].append((s, e))
        return out

    def gaps_by_camera(self, cameras: Sequence[str] | None, start: datetime, end: datetime,
                       now: datetime) -> dict[str, list[tuple[datetime, datetime, str, str]]]:
        """Gap rows overlapping ``start..end``; an outage still open counts up to ``now``."""
        out: dict[str, list[tuple[datetime, datetime, str, str]]] = defaultdict(list)
        with self.catalog.engine.connect() as conn:
            query = select(GapRow.camera_id, GapRow.start_at, GapRow.end_at, GapRow.cause, GapRow.detail).where(
                GapRow.start_at < end, (GapRow.end_at.is_(None)) | (GapRow.end_at > start))
            for camera_id, s, e, cause, detail in conn.execute(self._only(query, GapRow.camera_id, cameras)).all():
                out[camera_id].append((s, e or now, cause, detail or ""))
        return out

    def custody_by_camera(self, start: datetime, now: datetime) -> dict[str, list[Custody]]:
        """Custody rows overlapping ``start..now`` by camera (``*``: the agents' own rows). A row still open ends
        at its last heartbeat plus two heartbeat periods, or now if that is later than now."""
        lapse = timedelta(seconds=2 * custody.HEARTBEAT_SECONDS)
        out: dict[str, list[Custody]] = defaultdict(list)
        with self.catalog.session() as session:
            query = select(CustodyRow.camera_id, CustodyRow.agent_id, CustodyRow.started_at, CustodyRow.alive_at,
                           CustodyRow.ended_at).where(CustodyRow.started_at < now,
                                                      (CustodyRow.ended_at.is_(None)) | (CustodyRow.ended_at > start))
            for camera_id, agent, started, alive, ended in session.execute(query):
                if ended is None:
                    out[camera_id].append(Custody(agent, started, min(now, alive + lapse), False))
                else:
                    out[camera_id].append(Custody(agent, started, ended, ended == alive))
        return out

    def first_video(self, cameras: Sequence[str] | None) -> dict[str, datetime]:
        """When jifang first saw video from each camera (its registration when none is configured)."""
        with self.catalog.session() as session:
            query = select(CoverageSpan.camera_id, func.min(CoverageSpan.start_at)).group_by(CoverageSpan.camera_id)
            return {camera_id: first for camera_id, first in
                    session.execute(self._only(query, CoverageSpan.camera_id, cameras)) if first is not None}

    # lock status per camera

    def set_lock_status(self, camera_id: str, margin: float | None, at: datetime) -> None:
        with self.catalog.session() as session:
            row = session.get(LockStatus, camera_id)
            if row is None:
                session.add(LockStatus(camera_id=camera_id, min_margin_seconds=margin, checked_at=at))
            else:
                row.min_margin_seconds, row.checked_at = margin, at
            session.commit()

    def lock_status(self) -> dict[str, float | None]:
        return {camera_id: row.min_margin_seconds for camera_id, row in self.lock_rows().items()}

    def lock_rows(self) -> dict[str, LockStatus]:
        with self.catalog.session() as session:
            return {row.camera_id: row for row in session.scalars(select(LockStatus))}

    def set_image_status(self, camera_id: str, objects: int, margin: float | None, held: int, deleted_early: int,
                         at: datetime) -> None:
        with self.catalog.session() as session:
            row = session.get(LockStatus, camera_id)
            if row is None:
                row = LockStatus(camera_id=camera_id, min_margin_seconds=None, checked_at=at)
                session.add(row)
            row.image_objects, row.image_min_margin_seconds, row.image_held = objects, margin, held
            row.image_deleted_before_floor, row.image_checked_at = deleted_early, at
            session.commit()

    # job runs

    def job_started(self, job: str, at: datetime) -> None:
        self._job(job, last_start=at)

    def job_finished(self, job: str, at: datetime, error: str | None = None) -> None:
        if error is None:
            self._job(job, last_success=at, last_error="")
        else:
            self._job(job, last_failure=at, last_error=error[:1000])

    def _job(self, job: str, **values: object) -> None:
        with self.catalog.session() as session:
            row = session.get(JobRun, job)
            if row is None:
                row = JobRun(job=job, last_error="")
                session.add(row)
            for name, value in values.items():
                setattr(row, name, value)
            session.commit()

    def job_runs(self) -> list[JobRun]:
        with self.catalog.session() as session:
            return list(session.scalars(select(JobRun).order_by(JobRun.job)))

    # leadership lease

    def try_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holder's lease is valid."""
        return leases.take(self.catalog, Lease, name, holder, now, now + timedelta(seconds=seconds))

    def release_lease(self, name: str, holder: str) -> None:
        with self.catalog.session() as session:
            lease = session.get(Lease, name)
            if lease is not None and lease.holder == holder:
                session.delete(lease)
                session.commit()

