"""The store the settings ask for: the filesystem adapter (embedded default) or MinIO (production)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jifang.config import StorageConfig
from jifang.store.base import ObjectStore, utc_now
from jifang.store.filesystem import FilesystemStore


def open_store(storage: StorageConfig, clock: Callable[[], datetime] | None = None) -> ObjectStore:
    """Open the adapter without checking that it is reachable (see :func:`connect_store` for that)."""
    clock = clock or utc_now
    if storage.kind == "filesystem":
        return FilesystemStore(storage.path, clock=clock)
    # minio-py is imported only when a MinIO store is configured (the embedded default never needs it)
    from jifang.store.minio_store import MinioStore

    cfg = storage.minio
    return MinioStore(
        endpoint=cfg.endpoint,
        access_key=cfg.access_key.read("storage.minio.access_key"),
        secret_key=cfg.secret_key.read("storage.minio.secret_key"),
        secure=cfg.secure,
        region=cfg.region,
        clock=clock,
    )
