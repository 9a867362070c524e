"""Property tests: for random histories, tier changes and maximums, no object is ever deleted or unlocked
before its floor, and raising a tier leaves no short lock after one enforce pass."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jifang.retention.service import RetentionService

from jifang.db import Catalog
from jifang.store import FilesystemStore
from jifang.tiers import MediaKind, Tier, retain_until

from .retention_history import Clock, History, settings_for

CAMERA = "33100200001320000001"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
RANK = {Tier.GENERAL: 0, Tier.IMPORTANT: 1, Tier.KEY: 2}

tiers = st.sampled_from(list(Tier))
steps = st.lists(st.tuples(tiers, st.integers(0, 200), st.one_of(st.none(), st.integers(1, 6))),
                 min_size=1, max_size=5)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=tiers, ages=st.lists(st.integers(0, 500), min_size=1, max_size=6), plan=steps)
def test_floors_hold_through_any_history(initial: Tier, ages: list[int], plan: list) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clock = Clock(NOW)
        config = settings_for(root, [{"id": CAMERA, "tier": str(initial)}])
        catalog = Catalog(config.database.url)
        catalog.migrate()
        store = FilesystemStore(config.storage.path, clock=clock)
        store.ensure_ready()
        (root / "work").mkdir()
        history = History(catalog, store, root / "work")
        segments = [history.record(CAMERA, initial, NOW - timedelta(days=age, hours=i), 600)
                    for i, age in enumerate(sorted(set(ages)))]
        highest = {s.key: initial for s in segments}  # the highest tier each object has lived under
        locks = {s.key: store.stat(MediaKind.VIDEO, s.key).retain_until for s in segments}
        service = RetentionService(config, catalog, store, clock)
        for tier, advance_days, maximum in plan:
            clock.now += timedelta(days=advance_days)
            cameras = [c.model_copy(update={"tier": tier}) for c in service.settings.cameras]
            retention = service.settings.retention.model_copy(
                update={"max_months": service.settings.retention.max_months.model_copy(
                    update={str(t): maximum for t in Tier})})
            service.settings = service.settings.model_copy(update={"cameras": cameras, "retention": retention})
            for s in segments:
                if RANK[Tier(tier)] > RANK[Tier(highest[s.key])]:
                    highest[s.key] = Tier(tier)
            service.enforce()
            for s in segments:
                stored = store.stat(MediaKind.VIDEO, s.key)
                floor = retain_until(s.capture_end, highest[s.key], MediaKind.VIDEO)
                if stored is None:
                    # deleted: only after the floor of the highest tier it ever had
                    assert clock.now >= floor, (s.key, clock.now, floor)
                    continue
                assert stored.retain_until >= locks[s.key], "a lock was shortened"
                assert stored.retain_until >= retain_until(s.capture_end, tier, MediaKind.VIDEO), \
                    "a raised tier left a short lock after one pass"
                locks[s.key] = stored.retain_until
        catalog.dispose()
