"""Retention compliance as a supervisor sees it: RetentionService.audit over the points of their scope, cached
for a short while (the audit reads every point's spans and gaps; the scheduler refreshes it every 15 min)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from dashboard.security import scope_grids
from dashboard.state import AppState
from dashboard.users import Principal
from jifang.config import Settings
from jifang.db.models import LegalHold
from retention.coverage import PointAudit
from retention.ledger import Ledger
from retention.service import RetentionService

CACHE_SECONDS = 30.0
_cache: dict[tuple[int, frozenset[str] | None], tuple[float, list[PointAudit]]] = {}
_lock = threading.Lock()


@dataclass
class Scoped:
    settings: Settings
    audits: list[PointAudit]


def scoped_settings(state: AppState, grids: frozenset[str] | None) -> Settings:
    merged, _ = state.registry().merge_into(state.settings, with_passwords=False)
    if grids is None:
        return merged
    return merged.model_copy(update={"cameras": [c for c in merged.cameras if c.grid in grids],
                                     "grids": [g for g in merged.grids if g.code in grids]})


def audit(state: AppState, principal: Principal) -> Scoped:
    grids = scope_grids(state, principal)
    settings = scoped_settings(state, grids)
    key = (id(state), grids)
    with _lock:
        hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
        return Scoped(settings, hit[1])
    audits = RetentionService(settings, state.catalog, state.store, state.clock).audit()
    with _lock:
        _cache[key] = (time.monotonic(), audits)
    return Scoped(settings, audits)


def holds(state: AppState, principal: Principal) -> list[LegalHold]:
    grids = scope_grids(state, principal)
    active = Ledger(state.catalog).active_holds()
    if grids is None:
        return active
    cameras = {c.id for c in scoped_settings(state, grids).cameras}
    return [h for h in active if h.camera_id in cameras]
