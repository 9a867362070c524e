"""Retention jobs against both store adapters (filesystem and a real S3 server): lock extension, legal
hold, refused deletes and expiry, each deletion in the audit log. Times are real here (the S3 server keeps
its own clock), so histories lie in the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jifang.retention.service import RetentionService

from jifang.db import Catalog
from jifang.errors import ObjectLockedError
from jifang.store import FilesystemStore
from jifang.store.minio_store import MinioStore
from jifang.tiers import MediaKind, retain_until

from .retention_history import History, settings_for

CAMERA = "33100200001320000001"


@pytest.fixture(params=["filesystem", "minio"])
def site(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    def build(tier: str, **retention: object) -> tuple[RetentionService, History]:
        settings = settings_for(tmp_path, [{"id": CAMERA, "tier": tier}], **retention)
        catalog = Catalog(settings.database.url)
        catalog.migrate()
        if request.param == "filesystem":
            store = FilesystemStore(settings.storage.path)
        else:
            s3 = request.getfixturevalue("s3")
            store = MinioStore(s3.endpoint, "k", "s", secure=False)
        store.ensure_ready()
        (tmp_path / "work").mkdir(exist_ok=True)
        service = RetentionService(settings, catalog, store, lambda: datetime.now(UTC))
        return service, History(catalog, store, tmp_path / "work")

    return build


def test_expiry_deletes_only_what_is_past_floor_plus_maximum(site) -> None:  # type: ignore[no-untyped-def]
    service, history = site("general", max_months={"general": 1})
    now = datetime.now(UTC)
    old = history.record(CAMERA, "general", now - timedelta(days=100), 600)  # floor + 1 month passed
    held = history.record(CAMERA, "general", now - timedelta(days=100, hours=-1), 600)
    young = history.record(CAMERA, "general", now - timedelta(days=40), 600)  # floor passed, maximum not
    service.hold(CAMERA, held.capture_start, held.capture_end, "case 2026-118", actor="supervisor1")
    result = service.enforce()
    assert result.deleted == 1
    assert service.store.stat(MediaKind.VIDEO, old.key) is None
    assert service.store.stat(MediaKind.VIDEO, held.key) is not None
    assert service.store.stat(MediaKind.VIDEO, young.key) is not None
    assert service.catalog.segment(old.key).deleted_at is not None
    deletions = service.ledger.audit_entries("delete")
    assert [(e.actor, e.target) for e in deletions] == [("system", old.key)]
    assert "floor + 1 months" in deletions[0].detail
    holds = service.ledger.audit_entries("hold")
    assert holds[0].actor == "supervisor1" and "case 2026-118" in holds[0].detail


def test_no_maximum_means_nothing_is_ever_deleted(site) -> None:  # type: ignore[no-untyped-def]
    service, history = site("general")
    now = datetime.now(UTC)
    old = history.record(CAMERA, "general", now - timedelta(days=400), 600)
    assert service.enforce().deleted == 0
    assert service.store.stat(MediaKind.VIDEO, old.key) is not None


def test_locked_and_held_objects_refuse_deletion_in_the_store(site) -> None:  # type: ignore[no-untyped-def]
    service, history = site("key")
    now = datetime.now(UTC)
    locked = history.record(CAMERA, "key", now - timedelta(hours=2), 600)
    with pytest.raises(ObjectLockedError):
        service.store.delete(MediaKind.VIDEO, locked.key)
    expired = history.record(CAMERA, "key", now - timedelta(days=200), 600)
    hold = service.hold(CAMERA, expired.capture_start, expired.capture_end, "evidence", actor="officer")
    assert service.store.stat(MediaKind.VIDEO, expired.key).legal_hold
    with pytest.raises(ObjectLockedError):
        service.store.delete(MediaKind.VIDEO, expired.key)
    service.release(hold.id, actor="officer")
    assert not service.store.stat(MediaKind.VIDEO, expired.key).legal_hold
    assert [e.action for e in service.ledger.audit_entries()] == ["hold", "release"]


def test_short_lock_in_the_store_is_extended(site) -> None:  # type: ignore[no-untyped-def]
    service, history = site("key")
    now = datetime.now(UTC)
    segment = history.record(CAMERA, "important", now - timedelta(hours=1), 600)  # locked for the wrong tier
    before = service.store.stat(MediaKind.VIDEO, segment.key).retain_until
    result = service.enforce()
    after = service.store.stat(MediaKind.VIDEO, segment.key).retain_until
    assert result.extended == 1
    assert after >= retain_until(segment.capture_end, "key", MediaKind.VIDEO) > before
    assert service.ledger.lock_status()[CAMERA] == 0


def test_overlapping_holds_release_only_what_no_other_hold_covers(site) -> None:  # type: ignore[no-untyped-def]
    service, history = site("key")
    now = datetime.now(UTC)
    a = history.record(CAMERA, "key", now - timedelta(hours=3), 600)
    b = history.record(CAMERA, "key", now - timedelta(hours=2), 600)
    first = service.hold(CAMERA, a.capture_start, b.capture_end, "incident 1", actor="w1")
    service.hold(CAMERA, b.capture_start, b.capture_end, "incident 2", actor="w2")
    service.release(first.id, actor="w1")
    assert not service.store.stat(MediaKind.VIDEO, a.key).legal_hold
    assert service.store.stat(MediaKind.VIDEO, b.key).legal_hold


def test_sightings_expire_with_their_image_tier_unless_evidence(site) -> None:  # type: ignore[no-untyped-def]
    from jifang.recognition.reporting import IncidentReporter, Observation

    service, _history = site("general")
    now = datetime.now(UTC)
    reporter = IncidentReporter(service.settings, service.catalog, service.store, lambda: now)
    camera = service.settings.cameras[0]
    old = reporter.record(Observation("plate", camera, now - timedelta(days=45), b"old-crop", b"f", text="浙A12345"),
                          None)
    young = reporter.record(Observation("plate", camera, now - timedelta(days=5), b"new-crop", b"f", text="浙A54321"),
                            None)
    result = service.enforce()
    assert result.sightings_expired == 1
    assert service.store.stat(MediaKind.IMAGE, old.crop_key) is None
    assert service.store.stat(MediaKind.IMAGE, young.crop_key) is not None
    assert [e.target for e in service.ledger.audit_entries("delete")] == ["sightings"]
