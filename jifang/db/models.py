"""Tables of the catalog. Times are stored as naive UTC and returned timezone-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use timezone-aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # type: ignore[no-untyped-def]
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class SegmentRow(Base):
    """One recorded video segment: where it lives, what it covers, how long it must be kept."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    grid: Mapped[str] = mapped_column(String(32))
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lock_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # read back from the store
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    held: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_segments_camera_start", "camera_id", "start_at"),)


class GapRow(Base):
    """An interval without video for a camera, with its cause. ``end_at`` is NULL while it is still open."""

    __tablename__ = "gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cause: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (Index("ix_gaps_camera_start", "camera_id", "start_at"),)


class CoverageSpan(Base):
    """A maximal interval of contiguous catalogued video for a camera: the audit reads these, not segments.
    Kept up to date in the same transaction that catalogues each segment."""

    __tablename__ = "coverage_spans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    segments: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_spans_camera_end", "camera_id", "end_at"),)


class CoverageDay(Base):
    """Seconds and bytes of video per camera and UTC day (timelines, bitrates for the capacity forecast)."""

    __tablename__ = "coverage_days"

    camera_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    covered_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    segments: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Append-only record of who did what to footage and retention (never updated, never deleted)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(String(1000), default="")
    grid: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the object's grid: who may read it
    purpose: Mapped[str] = mapped_column(String(500), default="", server_default="")
    source_ip: Mapped[str] = mapped_column(String(64), default="", server_default="")

    __table_args__ = (Index("ix_audit_log_grid_id", "grid", "id"),)


class LegalHold(Base):
    """Evidence lock over a camera's time range; its objects cannot be deleted until it is released."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JobRun(Base):
    """Last start, success and failure of each scheduled retention job."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_failure: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(String(1000), default="")


class Lease(Base):
    """A named lease: the one process holding it (until ``expires_at``) is the active one."""

    __tablename__ = "leases"
    lease_columns = ("name", "holder")  # for jifang.db.leases

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LockStatus(Base):
    """Per camera: the shortest margin between a stored lock (read back from the store) and what its tier
    asks now, as of the last verification."""

    __tablename__ = "lock_status"

    camera_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    min_margin_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # images of the camera (snapshots, evidence), read back from the store by the same enforce pass
    image_objects: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_min_margin_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    image_held: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_deleted_before_floor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CustodyRow(Base):
    """An edge agent held (recorded) a camera from ``started_at``; ``alive_at`` is its last heartbeat, ``ended_at``
    its clean stop. Written at the time by the agent: the evidence for ``agent_offline`` and ``handover`` gaps.
    ``camera_id`` ``*`` is the agent's own row (it was running, whatever it recorded)."""

    __tablename__ = "custody"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    alive_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_custody_camera_start", "camera_id", "started_at"),
                      Index("ix_custody_agent_open", "agent_id", "ended_at"))


class AreaRow(Base):
    """An administrative area above grids: county (区县), township (乡镇街道) or village/community (村社区)."""

    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)  # GB/T 2260 + statistical area code
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))  # county | township | village
    parent: Mapped[str | None] = mapped_column(String(12), nullable=True)


class GridRow(Base):
    __tablename__ = "grids"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))  # 城市社区 | 城中村 | 农村 | 专属网格
    village: Mapped[str | None] = mapped_column(String(12), nullable=True)
    managed_by: Mapped[str] = mapped_column(String(16), default="", server_default="")  # "file": the YAML seed


class TeamMemberRow(Base):
    """A member of a grid's 3+X+Y team (§6) and how to reach them."""

    __tablename__ = "team_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # 网格长 | 网格指导员 | 专职网格员 | 网格业务指导员 | 兼职网格员
    phone: Mapped[str] = mapped_column(String(32), default="")
    channels: Mapped[str] = mapped_column(String(500), default="")  # e.g. "mqtt,webhook:https://..."
    managed_by: Mapped[str] = mapped_column(String(16), default="", server_default="")


class CameraRow(Base):
    """A registered camera point. The password is stored encrypted (jifang.crypto), never in clear."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    grid: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(200), default="")
    onvif_endpoint: Mapped[str] = mapped_column(String(200), default="")
    main_rtsp_url: Mapped[str] = mapped_column(String(500))
    sub_rtsp_url: Mapped[str] = mapped_column(String(500), default="")
    snapshot_uri: Mapped[str] = mapped_column(String(500), default="")
    username: Mapped[str] = mapped_column(String(64), default="")
    password_encrypted: Mapped[str] = mapped_column(String(500), default="")
    manufacturer: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(100), default="")
    firmware: Mapped[str] = mapped_column(String(100), default="")
    serial: Mapped[str] = mapped_column(String(100), default="")
    signage: Mapped[bool] = mapped_column(Boolean, default=False)
    purpose: Mapped[str] = mapped_column(String(500), default="")
    registered_by: Mapped[str] = mapped_column(String(64), default="")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # online|auth_failed|unreachable|clock_skew
    status_detail: Mapped[str] = mapped_column(String(500), default="")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    clock_offset_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)  # only agents of this site record it
    recognize: Mapped[str] = mapped_column(String(32), default="", server_default="")  # "plate,face"
    password_ref: Mapped[str] = mapped_column(String(300), default="", server_default="")  # JSON {env|file: ...}
    managed_by: Mapped[str] = mapped_column(String(16), default="", server_default="")  # "file": the YAML seed
    # set by every change of what an agent records (not by status updates): agents poll max(updated_at)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AgentRow(Base):
    """An edge agent of the fleet and its last heartbeat."""

    __tablename__ = "agents"

    agent_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CameraLease(Base):
    """Which agent records a camera, until when. Exactly one row per camera: an agent takes a camera by
    inserting the row or by updating it once it has expired."""

    __tablename__ = "camera_leases"
    lease_columns = ("camera_id", "agent_id")  # for jifang.db.leases

    camera_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WatchlistEntry(Base):
    """A person (face) or vehicle (plate) to watch for, with its Appendix A category and why."""

    __tablename__ = "watchlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # plate | face
    name: Mapped[str] = mapped_column(String(100))
    plate: Mapped[str] = mapped_column(String(16), default="")  # normalised plate text, for plates
    category: Mapped[str] = mapped_column(String(16))
    subcategory: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WatchlistEmbedding(Base):
    __tablename__ = "watchlist_embeddings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    source: Mapped[str] = mapped_column(String(255), default="")


class IncidentRow(Base):
    """An Appendix A incident report (from a recognition hit or entered by a grid worker)."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(16))
    subcategory: Mapped[str] = mapped_column(String(16))
    gbt31000_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    grid: Mapped[str] = mapped_column(String(32), index=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(8))  # plate | face | manual
    summary: Mapped[str] = mapped_column(String(500))
    details: Mapped[str] = mapped_column(Text)  # JSON: recognition details and evidence keys
    state: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # the inbox: a grid's incidents, newest first
    __table_args__ = (Index("ix_incidents_grid_occurred", "grid", "occurred_at"),)


class IncidentStep(Base):
    """One step of an incident's life (上报 → 受理 → 分派 → 处置 → 反馈 → 办结), with who and when."""

    __tablename__ = "incident_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer, index=True)
    state: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(1000), default="")
    assignee: Mapped[str] = mapped_column(String(64), default="")


class IncidentRecipient(Base):
    __tablename__ = "incident_recipients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer, index=True)
    member_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)


class Delivery(Base):
    """Outbox: one row per incident and channel, retried until delivered; failures stay visible."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer, index=True)
    channel: Mapped[str] = mapped_column(String(300))  # mqtt | webhook:<url>
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")


class Sighting(Base):
    """Every recognition sighting, hit or not; kept for its image tier only."""

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    camera_id: Mapped[str] = mapped_column(String(20), index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(String(32), default="")  # plate text
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    color: Mapped[str] = mapped_column(String(8), default="")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)
    crop_key: Mapped[str] = mapped_column(String(255), default="")
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRow(Base):
    """A dashboard user: argon2 password hash, one role and, for grid workers and supervisors, a scope of grid
    or area codes (comma-separated)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | technician | supervisor | grid_worker
    scope: Mapped[str] = mapped_column(String(1000), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserSessionRow(Base):
    """A dashboard login session; only the SHA-256 of the cookie value is stored."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str] = mapped_column(String(64), default="")


class LoginLimitRow(Base):
    """Failed-login counter of one key (user name + address, or address) in its current window. A login takes a
    slot with one conditional UPDATE before the password is checked, so concurrent attempts (in any process)
    cannot overrun the limit."""

    __tablename__ = "login_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)


class LoginAttemptRow(Base):
    """One login attempt, for rate limiting (failures per user and address) and the audit trail."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    success: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_login_attempts_ip_at", "ip", "at"),
                      Index("ix_login_attempts_user_ip_at", "username", "ip", "at"))


# the dashboard's inbox across every grid pages newest first on this index (migration 0008)
Index("ix_incidents_occurred_id", IncidentRow.occurred_at, IncidentRow.id)


class Gb28181DeviceRow(Base):
    """A GB/T 28181 device (camera or NVR) allowed to register; its SIP password is encrypted (jifang.crypto)."""

    __tablename__ = "gb28181_devices"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    password_encrypted: Mapped[str] = mapped_column(String(500))
    transport: Mapped[str] = mapped_column(String(8), default="")  # udp | tcp: how it last registered
    host: Mapped[str] = mapped_column(String(64), default="")  # the packet's source address (NAT), not Contact
    port: Mapped[int] = mapped_column(Integer, default=0)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_keepalive_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    manufacturer: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(100), default="")
    firmware: Mapped[str] = mapped_column(String(100), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Gb28181ChannelRow(Base):
    """A channel a device's Catalog lists. It records once a technician assigns it a grid and tier, which
    registers it as a camera (``cameras`` row with ``main_rtsp_url`` gb28181://DEVICE/CHANNEL)."""

    __tablename__ = "gb28181_channels"
    __table_args__ = (Index("ix_gb28181_channels_device", "device_id"),)

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="")  # ON | OFF as the device reports it
    ptz_type: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parent: Mapped[str] = mapped_column(String(64), default="")
    manufacturer: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
