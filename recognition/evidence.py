"""Evidence images go through a local spool, like segments: an incident must not wait for, or be lost to, an
object store that is down.

An image enters the spool as a JPEG plus a manifest (its key, metadata, lock floor and whether it is held),
both written atomically and fsynced; from then on it is durable and the sighting and incident may point at its
key. A background thread uploads what is spooled, with its COMPLIANCE lock and legal hold, and retries while
the store is unavailable (one warning per outage, no traceback). What is left at shutdown uploads at the next
start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jifang.domain import ObjectMeta
from jifang.durable import fsync_path
from jifang.errors import StoreError, StoreUnavailableError
from jifang.store import ObjectStore
from jifang.tiers import MediaKind, Tier

log = logging.getLogger("jifang.evidence")


@dataclass(frozen=True)
class SpooledImage:
    key: str
    meta: ObjectMeta
    retain_until: datetime
    held: bool
    image: Path
    manifest: Path


def _write_durably(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


class EvidenceSpool:
    def __init__(self, root: Path, store: ObjectStore, retry_seconds: float = 5.0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.retry_seconds = retry_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = False

    def admit(self, key: str, data: bytes, meta: ObjectMeta, retain_until: datetime, held: bool) -> SpooledImage:
        """Make the image durable locally (image first, manifest last: a manifest always has its image)."""
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        image, manifest = self.root / f"{name}.jpg", self.root / f"{name}.json"
        _write_durably(image, data)
        _write_durably(manifest, json.dumps({
            "key": key, "held": held, "retain_until": retain_until.isoformat(),
            "meta": {"camera_id": meta.camera_id, "grid": meta.grid, "tier": str(meta.tier),
                     "capture_start": meta.capture_start.isoformat(), "capture_end": meta.capture_end.isoformat(),
                     "sha256": meta.sha256},
        }).encode())
        fsync_path(self.root)
        self._wake.set()
        return SpooledImage(key, meta, retain_until, held, image, manifest)

    def pending(self) -> list[SpooledImage]:
        found = []
        for manifest in sorted(self.root.glob("*.json")):
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                m = data["meta"]
                meta = ObjectMeta(m["camera_id"], m["grid"], Tier(m["tier"]),
                                  datetime.fromisoformat(m["capture_start"]),
                                  datetime.fromisoformat(m["capture_end"]), m["sha256"])
                found.append(SpooledImage(data["key"], meta, datetime.fromisoformat(data["retain_until"]),
                                          bool(data["held"]), manifest.with_suffix(".jpg"), manifest))
            except (OSError, ValueError, KeyError) as exc:
                log.error("evidence manifest %s is unreadable (%s); it stays in the spool", manifest, exc)
        return found

    def upload(self, item: SpooledImage) -> None:
        """Store the image under its lock floor, then the legal hold; release the spool copy only after both."""
        self.store.put(MediaKind.IMAGE, item.key, item.image, item.meta, item.retain_until)
        if item.held:
            self.store.set_legal_hold(MediaKind.IMAGE, item.key, True)
        item.manifest.unlink(missing_ok=True)
        item.image.unlink(missing_ok=True)

    def drain(self) -> int:
        """Upload everything spooled; returns what is left (the store is unavailable)."""
        left = 0
        for item in self.pending():
            try:
                self.upload(item)
            except StoreUnavailableError as exc:
                if not self._outage:
                    log.warning("object store unavailable (%s); evidence images stay spooled and upload when it "
                                "returns", exc)
                self._outage = True
                return len(self.pending())
            except StoreError as exc:  # e.g. a conflicting object: keep the image, say so, go on with the rest
                log.error("evidence %s not uploaded: %s; it stays in %s", item.key, exc, self.root)
                left += 1
        if self._outage:
            log.info("object store back: spooled evidence images uploaded")
        self._outage = False
        return left

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="evidence-upload", daemon=True)
        self._thread.start()

    def stop(self, drain_seconds: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(drain_seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # a bug or a full disk must not end uploads: the next round retries
                log.exception("evidence upload round failed")
            self._wake.wait(self.retry_seconds)
        with contextlib.suppress(StoreError, OSError):  # last try at shutdown; what is left uploads at next start
            self.drain()
