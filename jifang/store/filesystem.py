"""Filesystem object store: the embedded default. Same keys and the same retention contract as MinIO.

Layout: ``ROOT/<bucket>/<key>`` holds the bytes (read-only once written) and ``ROOT/<bucket>/.meta/<key>.json``
the metadata, retain-until and legal hold. The metadata is written before the object, so an object never
exists without its lock.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat as stat_mod
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from jifang.domain import ObjectMeta, StoredObject, bucket_for
from jifang.durable import fsync_path
from jifang.errors import ObjectConflictError, ObjectLockedError, StoreError
from jifang.store.base import Clock, ObjectStore, utc_now
from jifang.tiers import MediaKind

META_DIR = ".meta"


READ_ONLY = stat_mod.S_IRUSR | stat_mod.S_IRGRP | stat_mod.S_IROTH
COPY_CHUNK = 64 * 1024  # under malloc's mmap threshold (jifang.memory): a reused heap buffer


def _write_atomically(target: Path, data: bytes | None = None, source: Path | None = None,
                      sha256: str | None = None) -> None:
    """Write ``data`` or a copy of ``source`` to ``target`` (read-only, fsynced, renamed into place). With
    ``sha256``, the bytes copied must hash to it, or nothing is stored (ObjectConflictError)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                digest = hashlib.sha256()
                buffer = memoryview(bytearray(COPY_CHUNK))
                with source.open("rb", buffering=0) as src:
                    while n := src.readinto(buffer):  # type: ignore[attr-defined]
                        digest.update(buffer[:n])
                        out.write(buffer[:n])
                if sha256 is not None and digest.hexdigest() != sha256:
                    raise ObjectConflictError(f"{source}: the bytes read have sha256 {digest.hexdigest()[:16]}..., "
                                              f"not the {sha256[:16]}... of its metadata; nothing stored")
            else:
                out.write(data or b"")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, READ_ONLY)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _link_atomically(target: Path, source: Path) -> bool:
    """Give ``source``'s file a second name, ``target`` (read-only, renamed into place): no bytes copied. False
    when the two are on different filesystems (or links are not supported), for the caller to copy instead."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-link-{uuid.uuid4().hex}"
    try:
        os.link(source, tmp)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    try:
        os.chmod(tmp, READ_ONLY)
        os.replace(tmp, target)
        fsync_path(target.parent)  # the source's data is fsynced by its owner; the new name must be too
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


class FilesystemStore(ObjectStore):
    def __init__(self, root: Path | str, clock: Clock = utc_now) -> None:
        self.root = Path(root)
        self.clock = clock

    def _object_path(self, kind: MediaKind, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts or key.startswith(META_DIR):
            raise StoreError(f"invalid object key {key!r}")
        return self.root / bucket_for(kind) / key

    def _meta_path(self, kind: MediaKind, key: str) -> Path:
        return self.root / bucket_for(kind) / META_DIR / f"{key}.json"

    def ensure_ready(self) -> None:
        for kind in MediaKind:
            (self.root / bucket_for(kind) / META_DIR).mkdir(parents=True, exist_ok=True)

    def _read_record(self, kind: MediaKind, key: str) -> dict | None:
        try:
            return json.loads(self._meta_path(kind, key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _write_record(self, kind: MediaKind, key: str, record: dict) -> None:
        meta_path = self._meta_path(kind, key)
        if meta_path.exists():
            os.chmod(meta_path, stat_mod.S_IRUSR | stat_mod.S_IWUSR)
        _write_atomically(meta_path, json.dumps(record, ensure_ascii=False).encode())

    def stat(self, kind: MediaKind, key: str) -> StoredObject | None:
        path = self._object_path(kind, key)
        record = self._read_record(kind, key)
        if record is None or not path.exists():
            return None
        return StoredObject(
            kind=MediaKind(kind),
            key=key,
            size=path.stat().st_size,
            retain_until=datetime.fromisoformat(record["retain_until"]),
            legal_hold=bool(record.get("legal_hold")),
            meta=ObjectMeta.from_user_metadata(record["metadata"]),
            lock_mode=record.get("mode"),
        )

    def _write_lock(self, kind: MediaKind, key: str, meta: ObjectMeta, retain_until: datetime) -> None:
        self._write_record(kind, key, {"retain_until": retain_until.isoformat(), "mode": "COMPLIANCE",
                                       "legal_hold": False, "metadata": meta.to_user_metadata()})

    def _write(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta, retain_until: datetime) -> None:
        self._write_lock(kind, key, meta, retain_until)
        _write_atomically(self._object_path(kind, key), source=source, sha256=meta.sha256)

    def _write_handed_over(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta,
                           retain_until: datetime) -> None:
        """The file itself, linked under its key when the spool is on the same filesystem: the embedded layout
        (spool and store under one data folder) then stores a segment without copying or re-reading it. Its
        owner verified its sha256 just before; elsewhere it is copied and hashed as ``_write`` does."""
        self._write_lock(kind, key, meta, retain_until)
        if not _link_atomically(self._object_path(kind, key), source):
            _write_atomically(self._object_path(kind, key), source=source, sha256=meta.sha256)

    def read(self, kind: MediaKind, key: str) -> bytes:
        return self._object_path(kind, key).read_bytes()

    def delete(self, kind: MediaKind, key: str) -> None:
        current = self.stat(kind, key)
        if current is None:
            return
        if current.legal_hold:
            raise ObjectLockedError(f"{key}: under legal hold; release the hold first")
        if current.retain_until is not None and self.clock() < current.retain_until:
            raise ObjectLockedError(
                f"{key}: locked (COMPLIANCE) until {current.retain_until.isoformat()}; it cannot be deleted earlier"
            )
        self._object_path(kind, key).unlink()
        self._meta_path(kind, key).unlink(missing_ok=True)

    def list(self, kind: MediaKind, prefix: str) -> Iterator[StoredObject]:
        bucket = self.root / bucket_for(kind)
        if not bucket.exists():
            return
        for dirpath, dirnames, filenames in os.walk(bucket):
            if Path(dirpath) == bucket and META_DIR in dirnames:
                dirnames.remove(META_DIR)
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue
                key = (Path(dirpath) / name).relative_to(bucket).as_posix()
                if key.startswith(prefix):
                    found = self.stat(kind, key)
                    if found is not None:
                        yield found

    def _set_retention(self, kind: MediaKind, key: str, until: datetime) -> None:
        record = self._read_record(kind, key) or {}
        record["retain_until"] = until.isoformat()
        self._write_record(kind, key, record)

    def set_legal_hold(self, kind: MediaKind, key: str, on: bool) -> None:
        record = self._read_record(kind, key)
        if record is None:
            raise FileNotFoundError(key)
        record["legal_hold"] = bool(on)
        self._write_record(kind, key, record)
