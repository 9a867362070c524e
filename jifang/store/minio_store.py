"""MinIO (S3) object store: buckets with object lock, COMPLIANCE retention on every put.

Retention is read back from the object's ``x-amz-object-lock-*`` headers (HEAD), which both MinIO and the
moto test server return. Over plain HTTP an object-lock put needs a checksum header that minio-py does not
send, so every put carries ``x-amz-checksum-sha256`` of the content (we hash it anyway) and is sent as a
single part so that checksum is the whole object's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.helpers import MIN_PART_SIZE
from minio.retention import Retention

from jifang.domain import ObjectMeta, StoredObject, bucket_for
from jifang.errors import (
    BucketNotLockedError,
    ObjectLockedError,
    StoreError,
    StoreUnavailableError,
)
from jifang.store.base import Clock, ObjectStore, utc_now
from jifang.tiers import MediaKind

META_PREFIX = "x-amz-meta-"
LOCK_REFUSALS = {"AccessDenied", "ObjectLocked", "InvalidRequest"}


def _http_client() -> urllib3.PoolManager:
    # Short timeouts and few retries: the recorder's uploader has its own backoff and must notice an
    # outage quickly instead of hanging inside the SDK.
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        maxsize=8,
    )


CONTENT_SHA256 = "x-amz-content-sha256"


class _KnownHashMinio(Minio):
    """minio-py hashes every request body again for the request signature (SHA-256 over HTTP, MD5 over
    HTTPS). A segment's sha256 is known before the upload (the recorder hashed it once when spooling), so a
    put that carries it signs with that value and the body is not read twice; the store verifies it against
    the body (and ``x-amz-checksum-sha256``). Over HTTPS the payload goes unsigned, as minio-py does."""

    def _build_headers(self, host, headers=None, body=None, creds=None):  # type: ignore[no-untyped-def]
        known = (headers or {}).pop(CONTENT_SHA256, None)
        if known is None or not body:
            return super()._build_headers(host, headers, body, creds)
        built, date = super()._build_headers(host, headers, None, creds)
        built["Content-Length"] = str(len(body))
        if creds and not self._base_url.is_https:
            built[CONTENT_SHA256] = known
        return built, date


class MinioStore(ObjectStore):
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool = True,
        region: str = "us-east-1",
        clock: Clock = utc_now,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.client = _KnownHashMinio(
            endpoint,
            access_key=access_key or None,
            secret_key=secret_key or None,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )

    def _call(self, what: str, func, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return func(*args, **kwargs)
        except S3Error:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise StoreUnavailableError(f"object store {self.endpoint} unreachable during {what}: {reason}") from None

    def ensure_ready(self) -> None:
        for kind in MediaKind:
            bucket = bucket_for(kind)
            try:
                if not self._call("bucket check", self.client.bucket_exists, bucket):
                    self._call("bucket creation", self.client.make_bucket, bucket, object_lock=True)
                    continue
                config = self._call("object-lock check", self.client.get_object_lock_config, bucket)
            except S3Error as exc:
                if exc.code == "ObjectLockConfigurationNotFoundError":
                    raise BucketNotLockedError(
                        f"bucket {bucket} exists without object lock: retention floors cannot be enforced. "
                        "Create it with object lock enabled (mc mb --with-lock) or remove it"
                    ) from None
                raise StoreError(f"object store {self.endpoint}: {exc.code}: {exc.message}") from None
            if config is None:
                raise BucketNotLockedError(f"bucket {bucket} has no object-lock configuration")

    def stat(self, kind: MediaKind, key: str) -> StoredObject | None:
        try:
            info = self._call("stat", self.client.stat_object, bucket_for(kind), key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound", "NoSuchVersion"):
                return None
            raise StoreError(f"{key}: stat failed: {exc.code}: {exc.message}") from None
        headers = {k.lower(): v for k, v in (info.metadata or {}).items()}
        until = headers.get("x-amz-object-lock-retain-until-date")
        user = {k[len(META_PREFIX) :]: v for k, v in headers.items() if k.startswith(META_PREFIX)}
        try:
            meta = ObjectMeta.from_user_metadata(user)
        except (KeyError, ValueError):
            meta = None
        return StoredObject(
            kind=MediaKind(kind),
            key=key,
            size=info.size or 0,
            retain_until=datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
            legal_hold=headers.get("x-amz-object-lock-legal-hold", "").upper() == "ON",
            meta=meta,
            lock_mode=headers.get("x-amz-object-lock-mode"),
        )

    def _write(self, kind: MediaKind, key: str, source: Path, meta: ObjectMeta, retain_until: datetime) -> None:
        size = source.stat().st_size
        checksum = base64.b64encode(bytes.fromhex(meta.sha256)).decode()
        headers = {
            **meta.to_user_metadata(),
            "x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-checksum-sha256": checksum,
            CONTENT_SHA256: meta.sha256,  # signs the request without hashing the body again
        }
        with source.open("rb") as data:
            try:
                self._call(
                    "upload",
                    self.client.put_object,
                    bucket_for(kind),
                    key,
                    data,
                    size,
                    content_type="video/mp4" if kind is MediaKind.VIDEO else "image/jpeg",
                    metadata=headers,
                    retention=Retention(COMPLIANCE, retain_until),
                    part_size=max(MIN_PART_SIZE, size),
                )
            except S3Error as exc:
                raise StoreError(f"{key}: upload refused: {exc.code}: {exc.message}") from None

    def read(self, kind: MediaKind, key: str) -> bytes:
        response = self._call("download", self.client.get_object, bucket_for(kind), key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def delete(self, kind: MediaKind, key: str) -> None:
        bucket = bucket_for(kind)
        try:
            info = self._call("stat", self.client.stat_object, bucket, key)
            # Delete the version itself: a delete without version id only hides it behind a marker.
            self._call("delete", self.client.remove_object, bucket, key, version_id=info.version_id)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return
            if exc.code in LOCK_REFUSALS:
                raise ObjectLockedError(f"{key}: the store refused the delete ({exc.code}): object is locked") from None
            raise StoreError(f"{key}: delete failed: {exc.code}: {exc.message}") from None

    def list(self, kind: MediaKind, prefix: str) -> Iterator[StoredObject]:
        try:
            for item in self._call("listing", self.client.list_objects, bucket_for(kind), prefix, recursive=True):
                yield StoredObject(MediaKind(kind), item.object_name, item.size or 0, None, False, None)
        except S3Error as exc:
            raise StoreError(f"listing {prefix}: {exc.code}: {exc.message}") from None

    def _set_retention(self, kind: MediaKind, key: str, until: datetime) -> None:
        try:
            self._call("retention", self.client.set_object_retention, bucket_for(kind), key,
                       Retention(COMPLIANCE, until))
        except S3Error as exc:
            raise StoreError(f"{key}: setting retention failed: {exc.code}: {exc.message}") from None

    def set_legal_hold(self, kind: MediaKind, key: str, on: bool) -> None:
        method = self.client.enable_object_legal_hold if on else self.client.disable_object_legal_hold
        try:
            self._call("legal hold", method, bucket_for(kind), key)
        except S3Error as exc:
            raise StoreError(f"{key}: legal hold failed: {exc.code}: {exc.message}") from None
