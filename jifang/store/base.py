"""The object-store port: what recorder, retention and recognition may ask of a store.

Both adapters honour the same contract: every put carries a COMPLIANCE retain-until; a put of an existing
key with the same sha256 is a no-op (uploads are idempotent), with another sha256 an ObjectConflictError;
deleting before retain-until or under legal hold raises ObjectLockedError; retention can be extended, never
shortened (RetentionShortenError, raised before any request is sent).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from jifang.domain import ObjectMeta, StoredObject
from jifang.errors import ObjectConflictError, RetentionShortenError
from jifang.tiers import MediaKind

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ObjectStore(abc.ABC):
    """Where segments and images live, each under a retention lock."""

    @abc.abstractmethod
    def ensure_ready(self) -> None:
        """Create the buckets (with object lock) if needed; raise when the store cannot guarantee locks."""

    @abc.abstractmethod
    def stat(self, kind: MediaKind, key: str) -> StoredObject | None:
        """The object's size, retention and metadata as the store reports them, or None when absent."""

    @abc.abstractmethod
    def _write(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta, retain_until: datetime) -> None:
        """Store ``source`` under ``key`` with a COMPLIANCE lock until ``retain_until``."""

    @abc.abstractmethod
    def read(self, kind: MediaKind, key: str) -> bytes:
        """The object's bytes."""

    @abc.abstractmethod
    def delete(self, kind: MediaKind, key: str) -> None:
        """Delete the object; ObjectLockedError while it is locked or held."""

    @abc.abstractmethod
    def list(self, kind: MediaKind, prefix: str) -> Iterator[StoredObject]:
        """Objects whose key starts with ``prefix`` (metadata may be None where listing omits it)."""

    @abc.abstractmethod
    def _set_retention(self, kind: MediaKind, key: str, until: datetime) -> None:
        """Set a COMPLIANCE retain-until (callers have checked it is not shorter)."""

    @abc.abstractmethod
    def set_legal_hold(self, kind: MediaKind, key: str, on: bool) -> None:
        """Place or lift a legal hold (evidence lock)."""

    def put(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta, retain_until: datetime,
            handover: bool = False) -> bool:
        """Upload ``source`` idempotently. True when written, False when the same content was already there.

        ``handover``: the caller gives the file up (it will only delete it, never write to it again), so a store
        on the same filesystem may keep the file itself instead of a copy."""
        existing = self.stat(kind, key)
        if existing is not None:
            if existing.meta is not None and existing.meta.sha256 == meta.sha256:
                if existing.retain_until is None or existing.retain_until < retain_until:
                    self.extend_retention(kind, key, retain_until)
                return False
            raise ObjectConflictError(
                f"{key}: already stored with different content (sha256 "
                f"{existing.meta.sha256 if existing.meta else 'unknown'} != {meta.sha256})"
            )
        if handover:
            self._write_handed_over(kind, key, source, meta, retain_until)
        else:
            self._write(kind, key, source, meta, retain_until)
        return True

    def _write_handed_over(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta,
                           retain_until: datetime) -> None:
        """``_write`` for a file its caller gives up; a store that can keep the file itself overrides it."""
        self._write(kind, key, source, meta, retain_until)

    def extend_retention(self, kind: MediaKind, key: str, until: datetime) -> None:
        """Lengthen the object's lock to ``until``; a shorter ``until`` is refused before anything is sent."""
        current = self.stat(kind, key)
        if current is None:
            raise FileNotFoundError(key)
        if current.retain_until is not None and until < current.retain_until:
            raise RetentionShortenError(
                f"{key}: refusing to shorten retention from {current.retain_until.isoformat()} "
                f"to {until.isoformat()}"
            )
        if current.retain_until != until:
            self._set_retention(kind, key, until)
