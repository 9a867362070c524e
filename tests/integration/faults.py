"""Fault injectors for the durability tests: a TCP proxy that takes a database away and gives it back, a
checksum-verifying S3 (as MinIO and AWS are), and the ledger arithmetic "seconds explained by nothing"."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
from datetime import datetime

from jifang.db import Catalog
from jifang.store import ObjectStore
from jifang.tiers import MediaKind

from .checks import holes


class TcpProxy:
    """127.0.0.1:port -> target. ``close()`` refuses new connections and cuts open ones (the database is
    gone, as when its server stops); ``open()`` listens again on the same port."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._listener is not None:
            # shutdown first: a bare close() leaves the accept() blocked in the other thread holding the
            # listening socket, which would then let one more connection through
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def verify_sha256_on_put(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Make the in-process moto S3 server refuse a PUT whose body does not match x-amz-checksum-sha256, as
    MinIO and S3 do (moto 5 stores it unchecked)."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    class BadDigest(S3ClientError):
        code = "BadDigest"

    original = S3Response.put_object

    def checked(self):  # type: ignore[no-untyped-def]
        claimed = self.headers.get("x-amz-checksum-sha256")
        if claimed and base64.b64encode(hashlib.sha256(self.body or b"").digest()).decode() != claimed:
            raise BadDigest("BadDigest", "The SHA256 you specified did not match the calculated checksum.")
        return original(self)

    monkeypatch.setattr(S3Response, "put_object", checked)


def _union_seconds(intervals: list[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> float:
    total, cursor = 0.0, lo
    for start, end in sorted((max(s, lo), min(e, hi)) for s, e in intervals):
        if end <= cursor:
            continue
        total += (end - max(start, cursor)).total_seconds()
        cursor = end
    return total


def unexplained_seconds(catalog: Catalog, camera_id: str) -> float:
    """Seconds between the first and the last catalogued video covered by neither an uploaded segment nor a
    gap row: what the recorder lost without saying so."""
    rows = [row for row in catalog.segments(camera_id) if row.uploaded_at is not None]
    gaps = [(g.start_at, g.end_at) for g in catalog.gaps(camera_id) if g.end_at is not None]
    lo, hi = min(row.start_at for row in rows), max(row.end_at for row in rows)
    covered = _union_seconds([(row.start_at, row.end_at) for row in rows] + gaps, lo, hi)
    return (hi - lo).total_seconds() - covered


def assert_catalog_is_store(catalog: Catalog, store: ObjectStore, camera_id: str) -> list:
    """Every uploaded catalog row is in the store with the same bytes, the store holds nothing else, and a
    row that never reached the store is explained by a spool_corrupt or upload_failed gap."""
    rows = catalog.segments(camera_id)
    uploaded = [row for row in rows if row.uploaded_at is not None]
    assert uploaded, "nothing was uploaded"
    stored = {obj.key for obj in store.list(MediaKind.VIDEO, f"video/{camera_id}/")}
    assert stored == {row.key for row in uploaded}, "catalog and store disagree"
    for row in uploaded:
        content = store.read(MediaKind.VIDEO, row.key)
        assert hashlib.sha256(content).hexdigest() == row.sha256 and len(content) == row.bytes, row.key
    setaside = [(g.start_at, g.end_at) for g in catalog.gaps(camera_id)
                if g.cause in ("spool_corrupt", "upload_failed")]
    for row in rows:
        if row.uploaded_at is None:
            assert (row.start_at, row.end_at) in setaside, f"{row.key} neither stored nor explained"
    return uploaded


def assert_nothing_lost(catalog: Catalog, store: ObjectStore, camera_id: str, max_hole: float | None = 1.0) -> list:
    """The closing check of every fault scenario: catalog == store == recorded media (assert_catalog_is_store), no
    hole over ``max_hole`` seconds between consecutive stored segments (None: holes are the scenario's own to
    judge), and at most 0.1 s of the camera's time with neither video nor a recorded cause."""
    rows = assert_catalog_is_store(catalog, store, camera_id)
    if max_hole is not None:
        assert all(abs(hole) <= max_hole for hole in holes(rows)), holes(rows)
    assert unexplained_seconds(catalog, camera_id) <= 0.1
    return rows
