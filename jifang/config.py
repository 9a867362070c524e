"""The configuration file (YAML), its schema and its ``JIFANG_*`` environment overrides.

Secrets never live in the file: a camera password or an object-store key is named by an environment
variable (``*_env``) or a file (``*_file``) and read only when needed. Errors name the file, the key and
what was expected, on one line.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jifang.domain import GB28181_SCHEME, GridType, camera_id_problem
from jifang.errors import ConfigError
from jifang.tiers import DEFAULT_TIMEZONE, Tier, zone

CONFIG_VERSION = 1
SECRET_FIELDS = {"password", "access_key", "secret_key", "env", "file"}
ENV_PREFIX = "JIFANG_"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Model):
    """Where a secret comes from: an environment variable or a file, never the configuration itself."""

    env: str | None = Field(None, description="environment variable holding the secret")
    file: Path | None = Field(None, description="file holding the secret (trailing newline stripped)")

    def read(self, what: str) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"{what}: environment variable {self.env} is not set")
            return value
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"{what}: cannot read secret file {self.file}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{what}: secret file {self.file} is not UTF-8 text") from None
        return ""


class TeamMemberConfig(Model):
    name: str = Field(description="member name")
    role: Literal["网格长", "网格指导员", "专职网格员", "网格业务指导员", "兼职网格员"] = Field(
        description="role in the 3+X+Y team")
    phone: str = Field("", description="phone number")
    channels: str = Field("", description="how incidents reach them, e.g. mqtt,webhook:https://...")


class GridConfig(Model):
    code: Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,32}$")] = Field(
        description="grid code, suggested: 12-digit village/community statistical code + 3-digit serial"
    )
    name: str = Field(description="grid name")
    type: GridType = Field(GridType.URBAN_COMMUNITY, description="城市社区, 城中村, 农村 or 专属网格")
    village: str | None = Field(None, description="village/community area code the grid belongs to")
    team: list[TeamMemberConfig] = Field(default_factory=list, description="the grid's 3+X+Y team (§6)")


class CameraConfig(Model):
    id: str = Field(description="20-digit GB/T 28181 device ID")
    name: str = Field(description="point name shown to users")
    grid: str = Field(description="code of the grid the point belongs to")
    tier: Tier = Field(description="retention tier: key, important or general (§8.3.2)")
    rtsp_url: str = Field(description="main stream RTSP URL, without credentials")
    username: str | None = Field(None, description="RTSP user name")
    password: SecretRef | None = Field(None, description="RTSP password reference: {env: VAR} or {file: PATH}")
    enabled: bool = Field(True, description="record this camera")
    site: str | None = Field(None, description="only agents of this site record the camera (none: any agent)")
    sub_rtsp_url: str | None = Field(None, description="sub stream for recognition (default: the main stream)")
    recognize: list[Literal["plate", "face"]] = Field(default_factory=list,
                                                      description="recognition at this point: plate, face")
    registered_at: datetime | None = Field(
        None, description="when the point was registered (ISO 8601); before it, no coverage is required")
    location: str = Field("", description="where the point is (address, pole number)")
    signage: bool = Field(False, description="the notice sign is posted (§5: required for key points)")
    purpose: str = Field("", description="purpose of the point (required for key points)")
    onvif_endpoint: str = Field("", description="ONVIF HOST:PORT (health checks)")
    snapshot_uri: str = Field("", description="ONVIF snapshot URI")
    manufacturer: str = Field("", description="device manufacturer (from the ONVIF probe)")
    model: str = Field("", description="device model")
    firmware: str = Field("", description="device firmware")
    serial: str = Field("", description="device serial number")
    registered_by: str = Field("", description="who registered the point")

    @field_validator("registered_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-01-01T00:00:00+08:00")
        return value

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        problem = camera_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("rtsp_url", "sub_rtsp_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme == GB28181_SCHEME:  # gb28181://DEVICE/CHANNEL: video sent by a registered GB/T 28181 device
            if not parts.hostname or not parts.path.strip("/"):
                raise ValueError("expected gb28181://DEVICE_ID/CHANNEL_ID")
            return value
        if parts.scheme not in ("rtsp", "rtsps"):
            raise ValueError(f"must be an rtsp:// or rtsps:// URL, got scheme {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("has no host (expected rtsp://HOST[:PORT]/PATH)")
        if parts.password:
            raise ValueError("must not contain a password: use username and password: {env: VAR}")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        return value


class MinioConfig(Model):
    endpoint: str = Field(description="HOST:PORT of the MinIO (S3) server (no scheme: TLS is `secure`)",
                          pattern=r"^[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?$")
    secure: bool = Field(True, description="use TLS")
    region: str = Field("us-east-1", description="S3 region name")
    access_key: SecretRef = Field(default_factory=lambda: SecretRef(env="JIFANG_MINIO_ACCESS_KEY"),
                                  description="access key reference (default: env JIFANG_MINIO_ACCESS_KEY)")
    secret_key: SecretRef = Field(default_factory=lambda: SecretRef(env="JIFANG_MINIO_SECRET_KEY"),
                                  description="secret key reference (default: env JIFANG_MINIO_SECRET_KEY)")
    connect_retries: int = Field(5, ge=0, description="attempts to reach the server at start (retention commands; "
                                 "edge run checks once and records into the spool while it is down)")


class StorageConfig(Model):
    kind: Literal["filesystem", "minio"] = Field("filesystem", description="filesystem (embedded) or minio")
    path: Path = Field(Path("jifang-data/store"), description="root of the filesystem object store")
    minio: MinioConfig | None = None

    @model_validator(mode="after")
    def _minio_needs_endpoint(self) -> StorageConfig:
        if self.kind == "minio" and self.minio is None:
            raise ValueError("kind is minio but the minio section (endpoint, keys) is missing")
        return self


class RecorderConfig(Model):
    segment_seconds: int = Field(10, ge=1, le=600, description="length of one recorded segment")
    spool_dir: Path = Field(Path("jifang-data/spool"), description="local spool for segments before upload")
    spool_max_bytes: int = Field(10 * 1024**3, gt=0, description="spool size that raises the spool-full alarm")
    backoff_max_seconds: float = Field(60, gt=0, description="cap of the reconnect backoff")
    lease_seconds: float | None = Field(
        None, ge=3, description="share the cameras with other agents of the same site through leases in the "
        "database, valid this long (none: this agent records every camera)")
    ffmpeg: str = Field("ffmpeg", description="ffmpeg executable")
    ffprobe: str = Field("ffprobe", description="ffprobe executable (stream checks, and segments the in-process "
                         "reader cannot judge)")
    upload_workers: int = Field(4, ge=1, le=8, description="parallel uploads to the object store; one camera has "
                                "at most one in flight, so its segments arrive in capture order")


class DatabaseConfig(Model):
    url: str = Field("sqlite:///jifang-data/jifang.db", description="SQLAlchemy URL (sqlite or postgresql)")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(value)
            _ = parsed.port
        except Exception:
            raise ValueError("is not a database URL (e.g. sqlite:///jifang-data/jifang.db or "
                             "postgresql+psycopg2://USER@HOST:5432/DB)") from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"database {parsed.get_backend_name()!r} is not supported (sqlite or postgresql)")
        return value


class TierMaximum(Model):
    key: int | None = Field(None, ge=1, description="months after the floor until deletion (none: keep)")
    important: int | None = Field(None, ge=1, description="months after the floor until deletion (none: keep)")
    general: int | None = Field(None, ge=1, description="months after the floor until deletion (none: keep)")


class TierMinimumCoverage(Model):
    key: float | None = Field(None, ge=0, le=1, description="coverage below this share is a violation (none: off)")
    important: float | None = Field(None, ge=0, le=1,
                                    description="coverage below this share is a violation (none: off)")
    general: float | None = Field(None, ge=0, le=1, description="coverage below this share is a violation (none: off)")


class RetentionJobsConfig(Model):
    enforce_seconds: int = Field(3600, ge=10, description="interval of lock verification and expiry")
    reconcile_seconds: int = Field(86400, ge=10, description="interval of catalog/store reconciliation")
    audit_seconds: int = Field(900, ge=10, description="interval of the coverage audit (metrics)")


class RetentionConfig(Model):
    max_months: TierMaximum = Field(default_factory=TierMaximum,
                                    description="optional maximum per tier: delete once floor + N months passed")
    upload_grace_minutes: int = Field(60, ge=1, description="a segment not uploaded after this is upload_failed")
    settle_seconds: int | None = Field(
        None, ge=0, description="the audit window ends this long before now: the segment being recorded and its "
        "cataloguing (none: one segment plus max(one segment, 10 s))")
    min_coverage: TierMinimumCoverage = Field(
        default_factory=TierMinimumCoverage,
        description="optional per-tier minimum coverage; explained outages below it make a point non-compliant")
    verify_batch: int = Field(5000, ge=1, description="objects whose lock is read back per enforce pass")
    lease_seconds: int = Field(30, ge=5, description="scheduler leadership lease; a dead leader is replaced "
                               "within one lease period")
    jobs: RetentionJobsConfig = Field(default_factory=RetentionJobsConfig)


class RegistryConfig(Model):
    key: SecretRef = Field(default_factory=lambda: SecretRef(env="JIFANG_REGISTRY_KEY"),
                           description="Fernet key(s) encrypting camera passwords, newest first, comma-separated "
                           "(default: env JIFANG_REGISTRY_KEY)")


class Gb28181Config(Model):
    """The GB/T 28181 platform side: devices register here over SIP and send their video as PS over RTP."""

    enabled: bool = Field(False, description="run the SIP server with the edge agent")
    host: str = Field("0.0.0.0", description="address the SIP server binds (UDP and TCP)")
    port: int = Field(5060, ge=0, le=65535, description="SIP port, UDP and TCP (0: any free port)")
    platform_id: str = Field("33100200002000000001", description="20-digit SIP ID of this platform (SIP server ID "
                             "configured on the devices)")
    domain: str = Field("3310020000", description="10-digit SIP domain (realm of the digest challenge)")
    media_host: str = Field("127.0.0.1", description="address written into the INVITE's SDP: the one the devices "
                            "can reach (for TCP passive they connect to it)")
    media_transport: Literal["tcp", "udp"] = Field("tcp", description="RTP over TCP (passive, survives NAT) or UDP")
    rtp_port_min: int = Field(30000, ge=1024, le=65535, description="lowest local RTP port")
    rtp_port_max: int = Field(30999, ge=1024, le=65535, description="highest local RTP port")
    register_expires: int = Field(3600, ge=60, description="registration lifetime granted (seconds)")
    keepalive_interval: float = Field(60, gt=0, description="expected keepalive interval (seconds)")
    keepalive_count: int = Field(3, ge=1, description="missed keepalives before a device is offline")
    media_timeout: float = Field(10, gt=0, description="seconds without RTP before the stream is ended and "
                                 "re-invited")
    invite_timeout: float = Field(8, gt=0, description="seconds to wait for the device's answer to an INVITE")
    jitter_packets: int = Field(64, ge=1, le=4096, description="UDP reorder buffer (packets)")


class MqttConfig(Model):
    host: str = Field("127.0.0.1", description="MQTT broker host")
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretRef | None = Field(None, description="broker password reference")
    tls: bool = Field(False, description="use TLS")


class WebhookConfig(Model):
    url: str = Field(description="URL incidents are POSTed to (JSON)")
    secret: SecretRef = Field(description="HMAC-SHA256 signing secret reference")


MODELS_DIR_ENV = "JIFANG_MODELS_DIR"
DEFAULT_MODELS_DIR = Path(".models")  # where scripts/install.sh runs `jifang models fetch`


def default_models_dir() -> Path:
    """The one default for every command that reads or fetches models: $JIFANG_MODELS_DIR, else `.models`."""
    return Path(os.environ.get(MODELS_DIR_ENV) or DEFAULT_MODELS_DIR)


class RecognitionConfig(Model):
    models_dir: Path = Field(default_factory=default_models_dir,
                             description="folder filled by 'jifang models fetch' (default: $JIFANG_MODELS_DIR, "
                             "else .models, where scripts/install.sh puts them)")
    face_threshold: float = Field(0.54, gt=0, lt=1, description="cosine similarity for a face watchlist hit "
                                  "(measured: bench/recognition_bench_faces.py)")
    plate_fuzzy: bool = Field(True, description="also match plates differing by one OCR-confusable character")
    evidence_seconds: float = Field(15, ge=0, description="video kept under legal hold around a hit")
    incident_cooldown_seconds: float = Field(300, ge=0, description="a new hit of the same entry at the same camera "
                                             "within this time joins the open incident")
    routing_roles: list[str] = Field(default_factory=lambda: ["专职网格员", "网格长", "网格指导员", "网格业务指导员",
                                                              "兼职网格员"],
                                     description="team roles an incident is routed to, in order")
    mqtt: MqttConfig | None = Field(None, description="publish incidents to jifang/grid/<grid>/incident (QoS 1)")
    webhooks: list[WebhookConfig] = Field(default_factory=list)


class MetricsConfig(Model):
    host: str = Field("127.0.0.1", description="address the Prometheus metrics endpoint binds")
    port: int = Field(9108, ge=0, le=65535, description="metrics port (0: any free port)")


class Settings(Model):
    version: Literal[1] = Field(CONFIG_VERSION, description="configuration format version")
    site: str = Field("default", description="name of this edge site")
    timezone: str = Field(DEFAULT_TIMEZONE, description="IANA time zone of the site: retention months are its "
                          "local calendar months, reports show its local time")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    recorder: RecorderConfig = Field(default_factory=RecorderConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    recognition: RecognitionConfig = Field(default_factory=RecognitionConfig)
    gb28181: Gb28181Config = Field(default_factory=Gb28181Config)
    grids: list[GridConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        seen: set[str] = set()
        for index, camera in enumerate(self.cameras):
            if camera.id in seen:
                raise ValueError(f"cameras[{index}].id: duplicate camera ID {camera.id}")
            seen.add(camera.id)
        grid_codes = [grid.code for grid in self.grids]
        duplicates = {code for code in grid_codes if grid_codes.count(code) > 1}
        if duplicates:
            raise ValueError(f"grids: duplicate grid code {sorted(duplicates)[0]}")
        for index, camera in enumerate(self.cameras):
            if camera.grid not in grid_codes:
                raise ValueError(f"cameras[{index}].grid: grid {camera.grid!r} is not declared under grids")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
        return value

    def grid_of(self, camera: CameraConfig) -> GridConfig:
        return next(grid for grid in self.grids if grid.code == camera.grid)


def _format_location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _format_validation_error(source: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = _format_location(tuple(p for p in first["loc"] if p not in ("function-after",)))
    message = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    secret = any(part in SECRET_FIELDS for part in first["loc"] if isinstance(part, str))
    if isinstance(got, str):
        got = re.sub(r"([A-Za-z][\w+.-]*://)[^/@\s]+@", r"\1***@", got)  # never echo credentials
    hidden = secret or isinstance(got, dict | list) or got is None or "got" in message
    shown = "" if hidden else f" (got {got!r})"
    more = len(exc.errors()) - 1
    tail = f"; and {more} more problem{'s' if more > 1 else ''}" if more else ""
    return f"{source}: {location + ': ' if location else ''}{message}{shown}{tail}"


def apply_env_overrides(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """``JIFANG_SECTION__KEY=value`` overrides ``section.key`` (values parsed as YAML scalars).

    Only names whose first part is a top-level setting count, so secrets such as JIFANG_MINIO_SECRET_KEY are
    never mistaken for overrides."""
    top_level = set(Settings.model_fields)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if path[0] not in top_level or path[0] in ("grids", "cameras"):
            continue
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        try:
            node[path[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            node[path[-1]] = raw
    return data


def parse_settings(data: Any, source: str, environ: dict[str, str] | None = None) -> Settings:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    data = apply_env_overrides(data, dict(os.environ if environ is None else environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None


def load_settings(path: Path | str, environ: dict[str, str] | None = None) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    return parse_settings(data, str(path), environ)


def dump_settings(settings: Settings) -> str:
    data = settings.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
