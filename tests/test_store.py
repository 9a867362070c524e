"""Both object-store adapters honour one contract: locked puts, idempotent uploads, refused deletes and
never a shortened lock. The MinIO adapter runs against a real S3 server over HTTP (moto, loopback)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jifang.config import MinioConfig, SecretRef, StorageConfig
from jifang.domain import ObjectMeta, video_key
from jifang.errors import (
    BucketNotLockedError,
    ObjectConflictError,
    ObjectLockedError,
    RetentionShortenError,
    StoreUnavailableError,
)
from jifang.store import ObjectStore, open_store
from jifang.store.minio_store import MinioStore
from jifang.tiers import MediaKind, Tier

NOW = datetime.now(UTC).replace(microsecond=0)
CAMERA = "33100200001320000001"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["filesystem", "minio"])
def store_and_clock(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ObjectStore, Clock]]:
    clock = Clock()
    if request.param == "filesystem":
        store: ObjectStore = open_store(StorageConfig(kind="filesystem", path=tmp_path / "store"), clock=clock)
    else:
        s3 = request.getfixturevalue("s3")
        store = MinioStore(s3.endpoint, "k", "s", secure=False, clock=clock)
    store.ensure_ready()
    yield store, clock


def payload(tmp_path: Path, content: bytes) -> tuple[Path, ObjectMeta]:
    path = tmp_path / f"seg-{hashlib.md5(content).hexdigest()}.mp4"
    path.write_bytes(content)
    meta = ObjectMeta(CAMERA, "331002001001001", Tier.KEY, NOW - timedelta(seconds=10), NOW,
                      hashlib.sha256(content).hexdigest())
    return path, meta


def test_put_carries_lock_and_metadata(store_and_clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, _clock = store_and_clock
    path, meta = payload(tmp_path, b"segment-bytes" * 100)
    key = video_key(CAMERA, meta.capture_start)
    until = NOW + timedelta(days=92)
    assert store.put(MediaKind.VIDEO, key, path, meta, until) is True
    stored = store.stat(MediaKind.VIDEO, key)
    assert stored is not None
    assert stored.size == 1300
    assert abs((stored.retain_until - until).total_seconds()) < 1
    assert stored.meta == meta
    assert stored.lock_mode == "COMPLIANCE"
    assert store.read(MediaKind.VIDEO, key) == path.read_bytes()
    assert [o.key for o in store.list(MediaKind.VIDEO, f"video/{CAMERA}/")] == [key]
    assert store.stat(MediaKind.VIDEO, "video/none.mp4") is None


def test_put_is_idempotent_and_refuses_other_content(store_and_clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, _clock = store_and_clock
    path, meta = payload(tmp_path, b"a" * 50)
    until = NOW + timedelta(days=31)
    assert store.put(MediaKind.VIDEO, "video/k.mp4", path, meta, until) is True
    assert store.put(MediaKind.VIDEO, "video/k.mp4", path, meta, until) is False
    other, other_meta = payload(tmp_path, b"b" * 50)
    with pytest.raises(ObjectConflictError):
        store.put(MediaKind.VIDEO, "video/k.mp4", other, other_meta, until)
    assert store.read(MediaKind.VIDEO, "video/k.mp4") == b"a" * 50


def test_delete_refused_before_retain_until_allowed_after(store_and_clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, clock = store_and_clock
    path, meta = payload(tmp_path, b"locked")
    store.put(MediaKind.VIDEO, "video/locked.mp4", path, meta, NOW + timedelta(days=1))
    with pytest.raises(ObjectLockedError):
        store.delete(MediaKind.VIDEO, "video/locked.mp4")
    assert store.stat(MediaKind.VIDEO, "video/locked.mp4") is not None
    # an object whose lock has passed can go (moto compares with its own clock: give it a past lock)
    path2, meta2 = payload(tmp_path, b"expired")
    store.put(MediaKind.VIDEO, "video/expired.mp4", path2, meta2, NOW - timedelta(days=1))
    clock.now = NOW + timedelta(days=2)
    store.delete(MediaKind.VIDEO, "video/expired.mp4")
    assert store.stat(MediaKind.VIDEO, "video/expired.mp4") is None


def test_legal_hold_blocks_delete_after_expiry(store_and_clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, clock = store_and_clock
    path, meta = payload(tmp_path, b"evidence")
    store.put(MediaKind.VIDEO, "video/evidence.mp4", path, meta, NOW - timedelta(days=1))
    store.set_legal_hold(MediaKind.VIDEO, "video/evidence.mp4", True)
    assert store.stat(MediaKind.VIDEO, "video/evidence.mp4").legal_hold is True
    clock.now = NOW + timedelta(days=2)
    with pytest.raises(ObjectLockedError):
        store.delete(MediaKind.VIDEO, "video/evidence.mp4")
    store.set_legal_hold(MediaKind.VIDEO, "video/evidence.mp4", False)
    store.delete(MediaKind.VIDEO, "video/evidence.mp4")


def test_retention_extends_but_never_shortens(store_and_clock, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store, _clock = store_and_clock
    path, meta = payload(tmp_path, b"x")
    until = NOW + timedelta(days=31)
    store.put(MediaKind.VIDEO, "video/x.mp4", path, meta, until)
    store.extend_retention(MediaKind.VIDEO, "video/x.mp4", until + timedelta(days=60))
    longer = store.stat(MediaKind.VIDEO, "video/x.mp4").retain_until
    assert abs((longer - (until + timedelta(days=60))).total_seconds()) < 1
    sent: list[datetime] = []
    monkeypatch.setattr(store, "_set_retention", lambda kind, key, when: sent.append(when))
    with pytest.raises(RetentionShortenError):
        store.extend_retention(MediaKind.VIDEO, "video/x.mp4", until)
    assert sent == []  # the shortening request was never sent to the store
    assert store.stat(MediaKind.VIDEO, "video/x.mp4").retain_until == longer


def test_filesystem_objects_are_read_only_and_keys_cannot_escape(tmp_path: Path) -> None:
    store = open_store(StorageConfig(kind="filesystem", path=tmp_path / "store"))
    store.ensure_ready()
    path, meta = payload(tmp_path, b"ro")
    store.put(MediaKind.VIDEO, "video/ro.mp4", path, meta, NOW + timedelta(days=1))
    mode = (tmp_path / "store" / "jifang-video" / "video" / "ro.mp4").stat().st_mode
    assert mode & 0o222 == 0
    from jifang.errors import StoreError

    with pytest.raises(StoreError, match="invalid object key"):
        store.put(MediaKind.VIDEO, "../escape.mp4", path, meta, NOW + timedelta(days=1))


def test_the_filesystem_store_refuses_a_copy_whose_sha256_is_not_its_metadata(tmp_path: Path) -> None:
    # as S3 refuses a body that does not match x-amz-checksum-sha256 (MinIO does; the moto test server does
    # not check it). A handed-over file is vouched for by its owner: the uploader hashes it before the put, or
    # knows it unchanged since it hashed it itself.
    store = open_store(StorageConfig(kind="filesystem", path=tmp_path / "store"))
    store.ensure_ready()
    path, meta = payload(tmp_path, b"what was hashed")
    path.write_bytes(b"what is there now")  # changed after its sha256 was taken
    with pytest.raises(ObjectConflictError, match=r"not the .* of its metadata; nothing stored"):
        store.put(MediaKind.VIDEO, "video/changed.mp4", path, meta, NOW + timedelta(days=1))
    assert store.stat(MediaKind.VIDEO, "video/changed.mp4") is None
    assert not (tmp_path / "store" / "jifang-video" / "video" / "changed.mp4").exists()
    assert [p.name for p in (tmp_path / "store" / "jifang-video" / "video").iterdir()] == []  # no temporary left


def test_a_handed_over_file_is_linked_into_the_filesystem_store_not_copied(tmp_path: Path) -> None:
    store = open_store(StorageConfig(kind="filesystem", path=tmp_path / "store"))
    store.ensure_ready()
    path, meta = payload(tmp_path, b"segment bytes" * 1000)
    assert store.put(MediaKind.VIDEO, "video/linked.mp4", path, meta, NOW + timedelta(days=1), handover=True)
    stored = tmp_path / "store" / "jifang-video" / "video" / "linked.mp4"
    assert stored.stat().st_ino == path.stat().st_ino and stored.stat().st_nlink == 2
    assert stored.stat().st_mode & 0o222 == 0
    path.unlink()  # what the spool does once the segment is catalogued as uploaded
    assert store.read(MediaKind.VIDEO, "video/linked.mp4") == b"segment bytes" * 1000
    assert store.stat(MediaKind.VIDEO, "video/linked.mp4").retain_until == NOW + timedelta(days=1)
    # not handed over: an independent copy
    other, meta2 = payload(tmp_path, b"evidence")
    store.put(MediaKind.IMAGE, "images/e.jpg", other, meta2, NOW + timedelta(days=1))
    copy = tmp_path / "store" / "jifang-images" / "images" / "e.jpg"
    assert copy.stat().st_ino != other.stat().st_ino and copy.read_bytes() == b"evidence"


def test_unreachable_minio_is_reported_as_such() -> None:
    store = MinioStore("127.0.0.1:9", "k", "s", secure=False)
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:9 unreachable"):
        store.ensure_ready()


def test_bucket_without_object_lock_is_refused(s3) -> None:  # type: ignore[no-untyped-def]
    store = MinioStore(s3.endpoint, "k", "s", secure=False)
    store.client.make_bucket("jifang-video")  # created by someone else, without object lock
    with pytest.raises(BucketNotLockedError, match="without object lock"):
        store.ensure_ready()


def test_open_store_reads_keys_from_env(s3, minio_env) -> None:  # type: ignore[no-untyped-def]
    storage = StorageConfig(kind="minio", minio=MinioConfig(endpoint=s3.endpoint, secure=False,
                                                            access_key=SecretRef(env="JIFANG_MINIO_ACCESS_KEY")))
    store = open_store(storage)
    store.ensure_ready()
    assert store.client._provider.retrieve().access_key == "test-access"


def test_minio_put_signs_with_the_known_sha256_without_hashing_the_body(s3, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import minio.api

    hashed: list[int] = []
    real = minio.api.sha256_hash
    monkeypatch.setattr(minio.api, "sha256_hash", lambda data: hashed.append(len(data or b"")) or real(data))
    store = MinioStore(s3.endpoint, "k", "s", secure=False)
    store.ensure_ready()
    content = b"segment-body" * 50_000
    path, meta = payload(tmp_path, content)
    trace = io.StringIO()
    store.client.trace_on(trace)
    key = video_key(CAMERA, meta.capture_start)
    assert store.put(MediaKind.VIDEO, key, path, meta, NOW + timedelta(days=92)) is True
    store.client.trace_off()
    assert len(content) not in hashed  # the body was read once, to send it
    assert f"X-Amz-Content-Sha256: {meta.sha256}" in trace.getvalue()
    assert store.read(MediaKind.VIDEO, key) == content
    assert store.stat(MediaKind.VIDEO, key).meta == meta
