"""The object-store port and its adapters: ``filesystem`` (embedded default) and ``minio`` (production)."""

from __future__ import annotations

from jifang.store.base import ObjectStore
from jifang.store.connect import StoreWhenReachable, connect_store, open_store_or_defer
from jifang.store.factory import open_store
from jifang.store.filesystem import FilesystemStore

__all__ = ["FilesystemStore", "ObjectStore", "StoreWhenReachable", "connect_store", "open_store", "open_store_or_defer"]
