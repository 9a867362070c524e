"""One camera's gap ledger writes, kept in order while the catalog database is unreachable.

The recorder must never stop (or blame the camera) because the database is down: a gap write that fails is
queued in memory and replayed, in order, before the next one. Recording itself does not need the database
(the spool is the write-ahead log), so an outage delays these rows and loses none while the agent runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from jifang.db import Catalog
from jifang.domain import GapCause

log = logging.getLogger("jifang.recorder")

Operation = Callable[[Catalog], object]


class GapBook:
    def __init__(self, catalog: Catalog, camera_id: str) -> None:
        self.catalog = catalog
        self.camera_id = camera_id
        self._pending: list[tuple[str, Operation]] = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> bool:
        """Replay queued writes; True when none is left."""
        while self._pending:
            what, operation = self._pending[0]
            try:
                operation(self.catalog)
            except Exception as exc:  # still down: keep the order, try again at the next write
                log.debug("camera %s: gap write %s still waiting (%s)", self.camera_id, what, type(exc).__name__)
                return False
            self._pending.pop(0)
            log.info("camera %s: delayed gap write %s done", self.camera_id, what)
        return True

    def _write(self, what: str, operation: Operation) -> object | None:
        if self.flush():
            try:
                return operation(self.catalog)
            except Exception as exc:
                log.warning("camera %s: catalog unreachable for %s (%s); kept and retried", self.camera_id, what,
                            type(exc).__name__)
        self._pending.append((what, operation))
        return None

    def open(self, start: datetime, cause: GapCause, detail: str) -> None:
        self._write("open", lambda c: c.open_gap(self.camera_id, start, cause, detail))

    def add(self, start: datetime, end: datetime, cause: GapCause, detail: str) -> None:
        self._write("add", lambda c: c.add_gap(self.camera_id, start, end, cause, detail))

    def update(self, detail: str) -> None:
        self._write("update", lambda c: c.update_open_gap(self.camera_id, detail))

    def close(self, end: datetime) -> object | None:
        """Close the open gap at ``end``; the closed row when written now, None when none or delayed."""
        return self._write("close", lambda c: c.close_gap(self.camera_id, end))

    def has_open(self) -> bool:
        try:
            return self.catalog.has_open_gap(self.camera_id)
        except Exception:  # unknown while the database is down: the caller then opens one (a no-op if open)
            return False
