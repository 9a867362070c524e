"""Domain types shared by every part: grids, camera points, segments and object addresses."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from jifang.tiers import MediaKind, Tier

# A camera point fed by a registered GB/T 28181 device: its main URL is gb28181://DEVICE_ID/CHANNEL_ID
GB28181_SCHEME = "gb28181"
GB28181_URL_PREFIX = f"{GB28181_SCHEME}://"

VIDEO_BUCKET = "jifang-video"
IMAGES_BUCKET = "jifang-images"

# GB/T 28181 device type codes a point can carry (131 camera, 132 IP camera, 118 NVR)
CAMERA_TYPE_CODES = {"131": "camera", "132": "ipc", "118": "nvr"}


class GridType(enum.StrEnum):
    URBAN_COMMUNITY = "城市社区"
    URBAN_VILLAGE = "城中村"
    RURAL = "农村"
    DEDICATED = "专属网格"


def camera_id_problem(camera_id: str) -> str | None:
    """Why ``camera_id`` is not a GB/T 28181 20-digit device ID, or None when it is one.

    Layout: 8-digit centre code (GB/T 2260 area + unit), 2-digit industry, 3-digit type, 1-digit network,
    6-digit serial, e.g. 33100200 00 132 0 000001.
    """
    if not re.fullmatch(r"\d+", camera_id or ""):
        return f"must be 20 digits (GB/T 28181), got {camera_id!r}"
    if len(camera_id) != 20:
        return f"must be 20 digits (GB/T 28181), got {len(camera_id)} digits"
    province = int(camera_id[:2])
    if not 11 <= province <= 82:
        return f"centre code {camera_id[:8]} does not start with a GB/T 2260 province code (11-82)"
    type_code = camera_id[10:13]
    if type_code not in CAMERA_TYPE_CODES:
        allowed = ", ".join(f"{code} {name}" for code, name in CAMERA_TYPE_CODES.items())
        return f"device type code {type_code} (digits 11-13) is not a camera type ({allowed})"
    return None


def utc_stamp(moment: datetime) -> str:
    """Compact UTC time with milliseconds, safe in object keys and file names: 20261127T075301.218Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"


def video_key(camera_id: str, capture_start: datetime) -> str:
    return stamp_video_key(camera_id, utc_stamp(capture_start))


def stamp_video_key(camera_id: str, stamp: str) -> str:
    """The object key of the segment whose capture start is ``stamp`` (a ``utc_stamp``), sliced from the stamp
    itself: a spool of 100,000 segments is keyed from its file names without formatting a time."""
    return f"video/{camera_id}/{stamp[0:4]}/{stamp[4:6]}/{stamp[6:8]}/{stamp[9:11]}/{stamp}.mp4"


def bucket_for(kind: MediaKind) -> str:
    return VIDEO_BUCKET if MediaKind(kind) is MediaKind.VIDEO else IMAGES_BUCKET


@dataclass(frozen=True)
class ObjectMeta:
    """What every stored object says about itself (object user metadata and catalog columns)."""

    camera_id: str
    grid: str
    tier: Tier
    capture_start: datetime
    capture_end: datetime
    sha256: str

    def to_user_metadata(self) -> dict[str, str]:
        return {
            "camera": self.camera_id,
            "grid": self.grid,
            "tier": str(self.tier),
            "capture-start": self.capture_start.astimezone(UTC).isoformat(),
            "capture-end": self.capture_end.astimezone(UTC).isoformat(),
            "sha256": self.sha256,
        }

    @classmethod
    def from_user_metadata(cls, meta: dict[str, str]) -> ObjectMeta:
        return cls(
            camera_id=meta["camera"],
            grid=meta["grid"],
            tier=Tier(meta["tier"]),
            capture_start=datetime.fromisoformat(meta["capture-start"]),
            capture_end=datetime.fromisoformat(meta["capture-end"]),
            sha256=meta["sha256"],
        )


@dataclass(frozen=True)
class StoredObject:
    """An object as the store reports it (retention read back from the store, not from the catalog)."""

    kind: MediaKind
    key: str
    size: int
    retain_until: datetime | None
    legal_hold: bool
    meta: ObjectMeta | None
    lock_mode: str | None = None  # COMPLIANCE for everything jifang writes


@dataclass(frozen=True)
class Segment:
    """A validated recording segment with its exact capture interval."""

    camera_id: str
    key: str
    capture_start: datetime
    capture_end: datetime
    size: int
    sha256: str
    tier: Tier
    grid: str
    retain_until: datetime

    @property
    def duration(self) -> float:
        return (self.capture_end - self.capture_start).total_seconds()

    def meta(self) -> ObjectMeta:
        return ObjectMeta(
            self.camera_id, self.grid, self.tier, self.capture_start, self.capture_end, self.sha256
        )


class GapCause(enum.StrEnum):
    """Why an interval of a point's required window holds no usable video. Each cause comes from evidence written
    at the time (recorder events, the agents' custody rows, the retention jobs' findings); the verdict rule that
    turns them into compliance lives in ``jifang.retention.coverage``."""

    CAMERA_OFFLINE = "camera_offline"  # the recorder could not reach the camera (reason in the detail)
    AGENT_OFFLINE = "agent_offline"  # no edge agent held the camera (custody rows show when one stopped/started)
    HANDOVER = "handover"  # the camera's lease moved from one fleet agent to another
    STORE_UNAVAILABLE = "store_unavailable"  # the recorder could not write (spool or store unavailable)
    CLOCK_STEP = "clock_step"  # the agent's clock stepped; recorded times jump
    UPLOAD_FAILED = "upload_failed"
    OBJECT_MISSING = "object_missing"
    LOCK_TOO_SHORT = "lock_too_short"
    NOT_RECORDED = "not_recorded"  # nothing explains it
    BEFORE_REGISTRATION = "before_registration"  # legacy rows only: before registration is outside the window
    # more causes from the recorder's own evidence (issue 14): the fault that stopped video, kept as found
    DATABASE_UNAVAILABLE = "database_unavailable"  # the catalog could not be written (video kept in the spool)
    SPOOL_CORRUPT = "spool_corrupt"  # a spooled file no longer matched its manifest: quarantined, never uploaded
    DISK_FULL = "disk_full"  # the spool's disk was full
    # GB/T 28181 channels: the outage is explained by the device or its answer to the platform's INVITE
    DEVICE_OFFLINE = "device_offline"
    MEDIA_TIMEOUT = "media_timeout"
    INVITE_REFUSED = "invite_refused"


# The one place a gap cause is named for people: (Chinese, English). The dashboard and the printed report read it.
GAP_CAUSE_NAMES: dict[str, tuple[str, str]] = {
    GapCause.CAMERA_OFFLINE: ("摄像机离线", "camera offline"),
    GapCause.AGENT_OFFLINE: ("采集代理离线", "no agent recording"),
    GapCause.HANDOVER: ("代理交接", "lease handover"),
    GapCause.STORE_UNAVAILABLE: ("存储不可用", "storage unavailable"),
    GapCause.CLOCK_STEP: ("时钟跳变", "clock step"),
    GapCause.UPLOAD_FAILED: ("上传失败", "upload failed"),
    GapCause.OBJECT_MISSING: ("存储对象缺失", "object missing"),
    GapCause.LOCK_TOO_SHORT: ("锁定期不足", "lock too short"),
    GapCause.NOT_RECORDED: ("无记录且无原因", "unexplained, not recorded"),
    GapCause.BEFORE_REGISTRATION: ("登记之前", "before registration"),
    GapCause.DATABASE_UNAVAILABLE: ("数据库不可用", "database unavailable"),
    GapCause.SPOOL_CORRUPT: ("缓存文件损坏", "spool file damaged"),
    GapCause.DISK_FULL: ("磁盘已满", "disk full"),
    GapCause.DEVICE_OFFLINE: ("国标设备离线", "GB/T 28181 device offline"),
    GapCause.MEDIA_TIMEOUT: ("媒体流超时", "media timeout"),
    GapCause.INVITE_REFUSED: ("设备拒绝点播", "device refused the INVITE"),
}

