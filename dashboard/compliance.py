"""Retention compliance as a supervisor sees it.

RetentionService.audit reads every point's spans and gaps (thousands of queries for a thousand points), so no
request ever runs it: one audit of every point is kept per application, refreshed in a background thread at most
every ``DashboardOptions.compliance_refresh_seconds`` (single flight: one refresh at a time, requests keep
serving the previous audit meanwhile). A request only filters that audit by its scope; the JSON answer is
memoised per (audit, scope). Only the very first request of a process waits for the first audit.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from jifang.dashboard.security import scope_grids
from jifang.dashboard.state import AppState
from jifang.dashboard.users import Principal
from jifang.retention.coverage import PointAudit
from jifang.retention.ledger import Ledger
from jifang.retention.report import to_data
from jifang.retention.service import RetentionService

from jifang.config import Settings
from jifang.db.models import LegalHold

log = logging.getLogger("jifang.dashboard.compliance")


@dataclass(frozen=True)
class Snapshot:
    """One audit of every point (configuration file and registry merged), as of ``at``."""

    generation: int
    at: datetime
    computed: float  # time.monotonic() when it was computed
    settings: Settings
    audits: tuple[PointAudit, ...]


@dataclass
class Scoped:
    settings: Settings
    audits: list[PointAudit]
    at: datetime


@dataclass
class AuditCache:
    """The application's audit snapshot and its single-flight background refresh."""

    snapshot: Snapshot | None = None
    refreshing: bool = False
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: threading.Condition = field(init=False)
    documents: dict[tuple[int, frozenset[str] | None], bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ready = threading.Condition(self.lock)


def compute(state: AppState, generation: int) -> Snapshot:
    settings, _ = state.registry().merge_into(state.settings, with_passwords=False)
    at = state.now()
    audits = RetentionService(settings, state.catalog, state.store, state.clock).audit(at=at)
    return Snapshot(generation, at, time.monotonic(), settings, tuple(audits))


def _refresh(state: AppState, cache: AuditCache) -> None:
    generation = (cache.snapshot.generation + 1) if cache.snapshot else 1
    snapshot = None
    try:
        snapshot = compute(state, generation)
    except Exception:
        log.exception("retention audit for the dashboard failed; serving the previous one")
    with cache.lock:
        cache.refreshing = False
        if snapshot is not None:
            cache.snapshot = snapshot
            cache.documents.clear()
            cache.failures = 0
        else:
            cache.failures += 1
        cache.ready.notify_all()


def start_refresh(state: AppState, force: bool = False) -> bool:
    """Start a background refresh unless one runs or the snapshot is still fresh; whether one was started."""
    cache = state.audit_cache
    with cache.lock:
        if cache.refreshing:
            return False
        fresh = cache.snapshot is not None and \
            time.monotonic() - cache.snapshot.computed < state.options.compliance_refresh_seconds
        if fresh and not force:
            return False
        cache.refreshing = True
    threading.Thread(target=_refresh, args=(state, cache), name="jifang-dashboard-audit", daemon=True).start()
    return True


def snapshot(state: AppState, timeout: float = 120.0) -> Snapshot:
    """The current snapshot (a refresh is started in the background when it is stale); waits only when there is
    none yet."""
    start_refresh(state)
    cache = state.audit_cache
    with cache.lock:
        deadline = time.monotonic() + timeout
        while cache.snapshot is None:
            if not cache.refreshing:  # the first refresh failed: try again, in this thread's wait
                cache.refreshing = True
                threading.Thread(target=_refresh, args=(state, cache), daemon=True).start()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the retention audit is not ready yet")
            cache.ready.wait(min(left, 1.0))
        return cache.snapshot


def _in(grids: frozenset[str] | None, grid: str) -> bool:
    return grids is None or grid in grids


def scoped_settings(settings: Settings, grids: frozenset[str] | None) -> Settings:
    if grids is None:
        return settings
    return settings.model_copy(update={"cameras": [c for c in settings.cameras if c.grid in grids],
                                       "grids": [g for g in settings.grids if g.code in grids]})


def audit(state: AppState, principal: Principal) -> Scoped:
    grids = scope_grids(state, principal)
    snap = snapshot(state)
    return Scoped(scoped_settings(snap.settings, grids), [a for a in snap.audits if _in(grids, a.grid)], snap.at)


def document(state: AppState, principal: Principal) -> bytes:
    """The compliance JSON of the principal's scope (retention.report.to_data), encoded, memoised per snapshot
    and scope."""
    grids = scope_grids(state, principal)
    snap = snapshot(state)
    cache = state.audit_cache
    key = (snap.generation, grids)
    with cache.lock:
        hit = cache.documents.get(key)
    if hit is not None:
        return hit
    data = json.dumps(to_data([a for a in snap.audits if _in(grids, a.grid)], snap.at,
                              scoped_settings(snap.settings, grids)), ensure_ascii=False,
                      separators=(",", ":")).encode()
    with cache.lock:
        if cache.snapshot is not None and cache.snapshot.generation == snap.generation and len(cache.documents) < 512:
            cache.documents[key] = data
    return data


def holds(state: AppState, principal: Principal) -> list[LegalHold]:
    grids = scope_grids(state, principal)
    active = Ledger(state.catalog).active_holds()
    if grids is None:
        return active
    cameras = {c.id for c in snapshot(state).settings.cameras if c.grid in grids}
    return [h for h in active if h.camera_id in cameras]


def point(state: AppState, principal: Principal, camera_id: str) -> PointAudit | None:
    """One point's audit, when the point is in the principal's scope (None otherwise: the route answers 404)."""
    grids = scope_grids(state, principal)
    return next((a for a in snapshot(state).audits if a.camera == camera_id and _in(grids, a.grid)), None)
