"""The object-store port and its adapters: ``filesystem`` (embedded default) and ``minio`` (production)."""

from __future__ import annotations

from jifang.store.base import ObjectStore
from jifang.store.filesystem import FilesystemStore

__all__ = ["FilesystemStore", "ObjectStore", "open_store"]


def open_store(storage, clock=None) -> ObjectStore:  # type: ignore[no-untyped-def]
    """The store the settings ask for. ``storage`` is a :class:`jifang.config.StorageConfig`."""
    from jifang.store.base import utc_now

    clock = clock or utc_now
    if storage.kind == "filesystem":
        return FilesystemStore(storage.path, clock=clock)
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
