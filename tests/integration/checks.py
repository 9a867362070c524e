"""Assertions shared by the end-to-end tests: catalog and store agree, locks are long enough."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

from dateutil.relativedelta import relativedelta

from jifang.db import Catalog
from jifang.store import ObjectStore
from jifang.tiers import MediaKind, Tier, floor_of

from .agent import CAMERA


def assert_catalog_matches_store(catalog: Catalog, store: ObjectStore, tier: Tier) -> list:
    rows = catalog.segments(CAMERA)
    assert rows, "nothing was recorded"
    stored_keys = {obj.key for obj in store.list(MediaKind.VIDEO, f"video/{CAMERA}/")}
    assert stored_keys == {row.key for row in rows}, "catalog and store disagree"
    floor = floor_of(tier, MediaKind.VIDEO)
    for row in rows:
        assert row.uploaded_at is not None, f"{row.key} never uploaded"
        stored = store.stat(MediaKind.VIDEO, row.key)
        assert stored is not None
        assert stored.lock_mode == "COMPLIANCE"
        minimum = max(row.end_at + relativedelta(months=floor.months) + timedelta(days=floor.days),
                      row.end_at + timedelta(days=30))
        assert stored.retain_until >= minimum, f"{row.key}: lock {stored.retain_until} < floor {minimum}"
        content = store.read(MediaKind.VIDEO, row.key)
        assert hashlib.sha256(content).hexdigest() == row.sha256 == stored.meta.sha256
        assert len(content) == row.bytes
        assert stored.meta.capture_start == row.start_at and stored.meta.capture_end == row.end_at
    return rows


def holes(rows: list) -> list[float]:
    """Seconds between each segment's end and the next one's start (negative: overlap)."""
    return [(b.start_at - a.end_at).total_seconds() for a, b in itertools.pairwise(rows)]
