"""Open the configured object store and make sure it is ready to lock objects, retrying while it is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from jifang.config import Settings
from jifang.errors import StoreUnavailableError
from jifang.store.base import ObjectStore, utc_now
from jifang.store.factory import open_store

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
