"""Open the configured object store and make sure it is ready to lock objects, retrying while it is down."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from jifang.config import Settings
from jifang.domain import ObjectMeta, StoredObject
from jifang.errors import StoreUnavailableError
from jifang.store.base import ObjectStore, utc_now
from jifang.store.factory import open_store
from jifang.tiers import MediaKind

log = logging.getLogger(__name__)


def connect_store(settings: Settings, clock: Callable[[], datetime] = utc_now,
                  retry_delay: float = 2.0) -> ObjectStore:
    """Open the configured store and make sure its buckets lock objects, retrying while it is unreachable."""
    store = open_store(settings.storage, clock=clock)
    attempts = 1 + (settings.storage.minio.connect_retries if settings.storage.minio else 0)
    for attempt in range(1, attempts + 1):
        try:
            store.ensure_ready()
            return store
        except StoreUnavailableError as exc:
            if attempt == attempts:
                raise StoreUnavailableError(f"{exc} (gave up after {attempts} attempts)") from None
            delay = retry_delay * attempt
            log.warning("%s; retrying in %.0f s (attempt %d of %d)", exc, delay, attempt, attempts)
            time.sleep(delay)
    raise AssertionError("unreachable")


class StoreWhenReachable(ObjectStore):
    """A store that did not answer at start. The edge agent records into its spool meanwhile (the spool
    exists for exactly that); every call here first makes sure the buckets lock objects, and raises
    StoreUnavailableError (which the uploader retries) until the store answers."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self._ready = False
        self._lock = threading.Lock()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)  # adapter specifics (the MinIO client, the filesystem root)

    def ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                self.inner.ensure_ready()
                self._ready = True
                log.info("object store reachable and ready; spooled segments upload now")

    def stat(self, kind: MediaKind, key: str) -> StoredObject | None:
        self.ensure_ready()
        return self.inner.stat(kind, key)

    def _write(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta, retain_until: datetime) -> None:
        self.ensure_ready()
        self.inner._write(kind, key, source, meta, retain_until)

    def put(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta, retain_until: datetime,
            handover: bool = False) -> bool:
        self.ensure_ready()
        return self.inner.put(kind, key, source, meta, retain_until, handover)

    def read(self, kind: MediaKind, key: str) -> bytes:
        self.ensure_ready()
        return self.inner.read(kind, key)

    def delete(self, kind: MediaKind, key: str) -> None:
        self.ensure_ready()
        self.inner.delete(kind, key)

    def list(self, kind: MediaKind, prefix: str) -> Iterator[StoredObject]:
        self.ensure_ready()
        return self.inner.list(kind, prefix)

    def _set_retention(self, kind: MediaKind, key: str, until: datetime) -> None:
        self.ensure_ready()
        self.inner._set_retention(kind, key, until)

    def set_legal_hold(self, kind: MediaKind, key: str, on: bool) -> None:
        self.ensure_ready()
        self.inner.set_legal_hold(kind, key, on)

    def extend_retention(self, kind: MediaKind, key: str, until: datetime) -> None:
        self.ensure_ready()
        self.inner.extend_retention(kind, key, until)


def open_store_or_defer(settings: Settings, clock: Callable[[], datetime] = utc_now) -> ObjectStore:
    """The configured store, checked once: reachable and locking, it is returned as is; unreachable, it is
    returned wrapped so callers retry (a store that answers but cannot lock still raises: that is a
    configuration error, not an outage)."""
    store = open_store(settings.storage, clock=clock)
    try:
        store.ensure_ready()
        return store
    except StoreUnavailableError as exc:
        log.warning("%s; recording into the spool, uploads start as soon as it answers", exc)
        return StoreWhenReachable(store)
