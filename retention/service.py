"""The retention jobs over real data: verify and extend locks, expire, reconcile catalog and store, find
lost uploads, place and lift legal holds, and audit coverage. Each job fetches, asks ``policy``/``coverage``
for the decision, and applies it; every deletion and hold is written to the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jifang.retention.coverage import Gap, ImageAudit, PointAudit, audit_point
from jifang.retention.ledger import Ledger
from jifang.retention.policy import (
    expiry_due,
    lock_target,
    required_lock,
    settle_seconds,
    window_complete_at,
    window_start,
)
from sqlalchemy import select

from jifang.config import CameraConfig, Settings
from jifang.db import Catalog
from jifang.db.models import LegalHold, Sighting
from jifang.domain import GapCause
from jifang.errors import ConfigError, ObjectLockedError, RetentionShortenError, StoreError
from jifang.store import ObjectStore
from jifang.tiers import MediaKind, Tier, add_months

log = logging.getLogger("jifang.retention")
SYSTEM = "system"


@dataclass
class EnforceResult:
    verified: int = 0
    extended: int = 0
    missing: int = 0
    short: int = 0
    deleted: int = 0
    refused: int = 0
    upload_failed: int = 0
    sightings_expired: int = 0
    images_verified: int = 0
    images_extended: int = 0


@dataclass
class ReconcileResult:
    checked_days: int = 0
    objects: int = 0
    missing_in_store: list[str] = field(default_factory=list)
    missing_in_catalog: list[str] = field(default_factory=list)


class RetentionService:
    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.clock = clock
        self.ledger = Ledger(catalog)

    @property
    def tz(self) -> str:
        return self.settings.timezone

    def cameras(self, grid: str | None = None, camera: str | None = None) -> list[CameraConfig]:
        chosen = [c for c in self.settings.cameras if (grid is None or c.grid == grid)
                  and (camera is None or c.id == camera)]
        if camera and not chosen:
            raise ConfigError(f"camera {camera} is not in the configuration")
        if grid and not any(g.code == grid for g in self.settings.grids):
            raise ConfigError(f"grid {grid} is not in the configuration")
        return chosen

    # enforce: locks, lost uploads, expiry

    def enforce(self) -> EnforceResult:
        result = EnforceResult()
        for camera in self.settings.cameras:
            self.verify_locks(camera, result)
            self.verify_image_locks(camera, result)
            self.find_lost_uploads(camera, result)
            self.expire(camera, result)
        self.expire_sightings(result)
        return result

    def expire_sightings(self, result: EnforceResult) -> None:
        """Sightings (and their plate crops) are kept for their image tier only, unless they are evidence of an
        incident. Their images' locks end with the tier, so the store allows the delete."""
        now = self.clock()
        with self.catalog.session() as session:
            rows = list(session.scalars(select(Sighting).where(
                Sighting.retain_until <= now, Sighting.incident_id.is_(None)).limit(10_000)))
            for row in rows:
                if row.crop_key:
                    try:
                        self.store.delete(MediaKind.IMAGE, row.crop_key)
                    except ObjectLockedError as exc:
                        log.warning("sighting crop %s not deleted: %s", row.crop_key, exc)
                        continue
                session.delete(row)
                result.sightings_expired += 1
            session.commit()
        if result.sightings_expired:
            self.ledger.audit(now, SYSTEM, "delete", "sightings",
                              f"{result.sightings_expired} sightings past their image tier deleted with their crops")

    def verify_locks(self, camera: CameraConfig, result: EnforceResult) -> None:
        """Read each new or re-tiered object's lock back from the store; extend short ones."""
        now = self.clock()
        for row in self.ledger.to_verify(camera.id, str(camera.tier), self.settings.retention.verify_batch):
            result.verified += 1
            stored = self.store.stat(MediaKind.VIDEO, row.key)
            if stored is None:
                result.missing += 1
                if self.ledger.record_loss(camera.id, row.start_at, row.end_at, GapCause.OBJECT_MISSING,
                                           f"{row.key} is catalogued but not in the store"):
                    log.error("camera %s: %s is missing from the store", camera.id, row.key)
                self.ledger.record_verified(row.key, row.tier, None, row.retain_until, now)
                continue
            # a lowered tier never lowers what the catalog asks: keep the longest of both
            needed = max(required_lock(row.end_at, camera.tier, tz=self.tz), row.retain_until)
            lock = stored.retain_until
            target = lock_target(lock, row.end_at, camera.tier, tz=self.tz)
            if target is not None or (lock is None or lock < needed):
                try:
                    self.store.extend_retention(MediaKind.VIDEO, row.key, needed)
                    lock = needed
                    result.extended += 1
                    self.ledger.clear_loss(camera.id, row.start_at, GapCause.LOCK_TOO_SHORT)
                except (StoreError, RetentionShortenError) as exc:
                    result.short += 1
                    self.ledger.record_loss(camera.id, row.start_at, row.end_at, GapCause.LOCK_TOO_SHORT,
                                            f"{row.key}: lock could not be extended: {exc}")
            self.ledger.record_verified(row.key, str(camera.tier), lock, needed, now)
        window = window_start(now, camera.tier, tz=self.tz)
        self.ledger.set_lock_status(camera.id, self.ledger.min_lock_margin(camera.id, window), now)

    def verify_image_locks(self, camera: CameraConfig, result: EnforceResult) -> None:
        """The camera's images (snapshots, evidence JPEGs) read back from the store: short locks extended to the
        image floor of the camera's tier, and catalogued sighting crops gone from the store before their floor
        counted. Written to the lock status the audit reads."""
        now = self.clock()
        margins: list[float] = []
        held = objects = 0
        present: set[str] = set()
        for stored in self.store.list(MediaKind.IMAGE, f"images/{camera.id}/"):
            objects += 1
            result.images_verified += 1
            present.add(stored.key)
            held += bool(stored.legal_hold)
            captured = stored.meta.capture_end if stored.meta else None
            if captured is None:
                continue  # not written by jifang: nothing says which floor applies
            needed = required_lock(captured, camera.tier, MediaKind.IMAGE, self.tz)
            lock = stored.retain_until
            if lock is None or lock < needed:
                try:
                    self.store.extend_retention(MediaKind.IMAGE, stored.key, needed)
                    lock = needed
                    result.images_extended += 1
                except (StoreError, RetentionShortenError) as exc:
                    log.error("camera %s: image %s lock could not be extended: %s", camera.id, stored.key, exc)
            margins.append((lock - needed).total_seconds() if lock is not None else float("-inf"))
        with self.catalog.session() as session:
            crops = session.scalars(select(Sighting.crop_key).where(
                Sighting.camera_id == camera.id, Sighting.crop_key != "", Sighting.retain_until > now))
            deleted_early = sum(1 for key in crops if key not in present)
        margin = min(margins) if margins else None
        self.ledger.set_image_status(camera.id, objects, None if margin is None else max(margin, -1e12), held,
                                     deleted_early, now)

    def find_lost_uploads(self, camera: CameraConfig, result: EnforceResult) -> None:
        grace = timedelta(minutes=self.settings.retention.upload_grace_minutes)
        for row in self.ledger.stale_uploads(camera.id, self.clock() - grace):
            if self.ledger.record_loss(camera.id, row.start_at, row.end_at, GapCause.UPLOAD_FAILED,
                                       f"{row.key} recorded {row.recorded_at.isoformat()} but never uploaded"):
                result.upload_failed += 1

    def expire(self, camera: CameraConfig, result: EnforceResult) -> None:
        maximum = getattr(self.settings.retention.max_months, str(camera.tier))
        if maximum is None:
            return
        now = self.clock()
        # only rows whose catalogued lock ended at least `maximum` months ago can be due
        for row in self.ledger.expiry_candidates(camera.id, add_months(now, -maximum, self.tz)):
            stored = self.store.stat(MediaKind.VIDEO, row.key)
            lock = stored.retain_until if stored else row.lock_until
            held = row.held or bool(stored and stored.legal_hold)
            if not expiry_due(row.end_at, camera.tier, maximum, now, lock, held, tz=self.tz):
                continue
            try:
                self.store.delete(MediaKind.VIDEO, row.key)
            except ObjectLockedError as exc:
                result.refused += 1
                log.warning("expiry of %s refused by the store: %s", row.key, exc)
                continue
            self.ledger.mark_deleted(row.key, now)
            self.ledger.audit(now, SYSTEM, "delete", row.key,
                              f"expired: tier {camera.tier} floor + {maximum} months passed", grid=row.grid)
            result.deleted += 1

    # reconciliation: catalog versus store, per camera and day

    def reconcile(self, days: int | None = None) -> ReconcileResult:
        result = ReconcileResult()
        now = self.clock()
        for camera in self.settings.cameras:
            start = window_start(now, camera.tier, tz=self.tz) if days is None else now - timedelta(days=days)
            day = datetime(start.year, start.month, start.day, tzinfo=UTC)
            while day <= now:
                prefix = f"video/{camera.id}/{day:%Y/%m/%d}/"
                stored = {obj.key for obj in self.store.list(MediaKind.VIDEO, prefix)}
                catalogued = self.ledger.iter_day_keys(camera.id, day)
                result.checked_days += 1
                result.objects += len(stored)
                for key, row in catalogued.items():
                    if row.uploaded_at is not None and key not in stored:
                        result.missing_in_store.append(key)
                        self.ledger.record_loss(camera.id, row.start_at, row.end_at, GapCause.OBJECT_MISSING,
                                                f"{key} is catalogued but not in the store")
                for key in sorted(stored - set(catalogued)):
                    result.missing_in_catalog.append(key)
                day += timedelta(days=1)
        if result.missing_in_catalog:
            self.ledger.audit(now, SYSTEM, "reconcile", "store",
                              f"{len(result.missing_in_catalog)} objects in the store are not catalogued")
        return result

    # legal holds

    def hold(self, camera_id: str, start: datetime, end: datetime, reason: str, actor: str) -> LegalHold:
        if end <= start:
            raise ConfigError("--to must be after --from")
        if not reason.strip():
            raise ConfigError("a legal hold needs a --reason")
        grid = self.cameras(camera=camera_id)[0].grid
        now = self.clock()
        hold = self.ledger.add_hold(camera_id, start, end, reason, actor, now)
        rows = self.ledger.segments_in(camera_id, start, end)
        for row in rows:
            if row.uploaded_at is not None:  # segments still spooled are held by the uploader when they arrive
                self.store.set_legal_hold(MediaKind.VIDEO, row.key, True)
        self.ledger.set_held(camera_id, start, end, True)
        self.ledger.audit(now, actor, "hold", f"camera {camera_id}",
                          f"hold {hold.id} {start.isoformat()}..{end.isoformat()} ({len(rows)} segments): {reason}",
                          grid=grid)
        return hold

    def release(self, hold_id: int, actor: str) -> LegalHold:
        now = self.clock()
        hold = self.ledger.release_hold(hold_id, actor, now)
        if hold is None:
            raise ConfigError(f"legal hold {hold_id} does not exist or is already released")
        others = [h for h in self.ledger.active_holds(hold.camera_id)]
        released = 0
        for row in self.ledger.segments_in(hold.camera_id, hold.start_at, hold.end_at):
            if any(h.start_at < row.end_at and h.end_at > row.start_at for h in others):
                continue  # still under another hold
            if row.uploaded_at is not None:
                self.store.set_legal_hold(MediaKind.VIDEO, row.key, False)
            self.ledger.set_held(hold.camera_id, row.start_at, row.end_at, False)
            released += 1
        self.ledger.audit(now, actor, "release", f"camera {hold.camera_id}",
                          f"hold {hold_id} released ({released} segments)",
                          grid=next((c.grid for c in self.settings.cameras if c.id == hold.camera_id), None))
        return hold

    # coverage audit

    @property
    def settle(self) -> float:
        return settle_seconds(self.settings.recorder.segment_seconds, self.settings.retention.settle_seconds)

    def audit(self, at: datetime | None = None, grid: str | None = None,
              camera: str | None = None) -> list[PointAudit]:
        """Every chosen point's audit from a constant number of queries (spans, gaps, custody, first video, lock
        status), grouped in memory."""
        now = at or self.clock()
        points = self.cameras(grid, camera)
        if not points:
            return []
        tz, settle = self.tz, self.settle
        end = now - timedelta(seconds=settle)
        by_tier = {tier: window_start(now, tier, tz=tz) for tier in {p.tier for p in points}}
        floors = {p.id: by_tier[p.tier] for p in points}
        earliest = min(floors.values())
        ids = [p.id for p in points]
        spans = self.ledger.spans_by_camera(ids, earliest, now)
        gap_rows = self.ledger.gaps_by_camera(ids, earliest, now, now)
        custody = self.ledger.custody_by_camera(earliest, now)
        unregistered = [p.id for p in points if p.registered_at is None]
        first_video = self.ledger.first_video(unregistered) if unregistered else {}
        status = self.ledger.lock_rows()
        segment = self.settings.recorder.segment_seconds
        audits = []
        for point in points:
            floor = floors[point.id]
            registered = (point.registered_at.astimezone(UTC) if point.registered_at is not None
                          else first_video.get(point.id))
            lo = max(floor, registered) if registered is not None else floor
            complete_at = (window_complete_at(registered, point.tier, tz=tz)
                           if registered is not None and registered > floor else None)
            ledger = [Gap(max(s, lo), min(e, end), GapCause(cause), detail)
                      for s, e, cause, detail in gap_rows.get(point.id, ()) if min(e, end) > max(s, lo)]
            row = status.get(point.id)
            images = None
            if row is not None and row.image_checked_at is not None:
                images = ImageAudit(row.image_objects or 0, row.image_min_margin_seconds, row.image_held or 0,
                                    row.image_deleted_before_floor or 0, row.image_checked_at)
            audits.append(audit_point(
                camera=point.id, grid=point.grid, tier=str(point.tier), window=(lo, end),
                spans=spans.get(point.id, []), ledger=ledger, custody=custody.get(point.id, []),
                agents=custody.get("*", []), min_lock_margin_seconds=row.min_margin_seconds if row else None,
                floor_start=floor, registered_at=registered, complete_at=complete_at, settle_seconds=settle,
                min_coverage=getattr(self.settings.retention.min_coverage, str(point.tier)), images=images,
                locks_checked_at=row.checked_at if row is not None and row.min_margin_seconds is not None else None,
                transition_seconds=max(30.0, 3.0 * segment),
            ))
        return audits


def tier_of(settings: Settings, camera_id: str) -> Tier:
    return next(c.tier for c in settings.cameras if c.id == camera_id)
