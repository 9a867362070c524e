"""GB/T 28181 devices and their channels as the cameras page shows them to technicians and admins.

A device's state comes from what the SIP server recorded (registration, the last keepalive); the dashboard does
not trust a stored ``online`` alone, because an agent that died cannot mark its devices offline: a device whose
last keepalive is older than interval x count, or whose registration expired, is shown offline. A channel's media
state comes from its camera point: not assigned (listed, not recorded), disabled, receiving (the recorder's last
word was a segment), down with the cause of its open gap (``device_offline``, ``media_timeout``,
``invite_refused``...), or waiting for its first segment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from jifang.dashboard.state import AppState
from sqlalchemy import select

from jifang.db.models import CameraRow, GapRow, Gb28181ChannelRow, Gb28181DeviceRow
from jifang.domain import GB28181_URL_PREFIX

# media states of a channel (labelled through the i18n catalogue's "media" kind)
UNASSIGNED, DISABLED, RECEIVING, DOWN, WAITING = "unassigned", "disabled", "receiving", "down", "waiting"
MEDIA_STATES = (UNASSIGNED, DISABLED, RECEIVING, DOWN, WAITING)


@dataclass(frozen=True)
class ChannelView:
    id: str
    name: str
    reported_status: str  # ON | OFF, as the device's Catalog says
    ptz_type: int | None
    grid: str | None  # None until a technician assigns it
    tier: str | None
    media: str  # one of MEDIA_STATES
    cause: str | None  # the open gap's cause while media is down
    since: datetime | None  # when the current media state began (the open gap's start, the last status change)


@dataclass(frozen=True)
class DeviceView:
    id: str
    name: str
    manufacturer: str
    model: str
    firmware: str
    transport: str
    address: str
    online: bool
    registered_at: datetime | None
    expires_at: datetime | None
    last_keepalive_at: datetime | None
    keepalive_age_seconds: float | None
    channels: list[ChannelView]


def _channel(row: Gb28181ChannelRow, camera: CameraRow | None, open_gap: GapRow | None) -> ChannelView:
    if camera is None:
        media, cause, since = UNASSIGNED, None, None
    elif not camera.enabled:
        media, cause, since = DISABLED, None, None
    elif open_gap is not None:
        media, cause, since = DOWN, open_gap.cause, open_gap.start_at
    elif camera.status == "online":
        media, cause, since = RECEIVING, None, camera.status_at
    else:
        media, cause, since = WAITING, None, camera.status_at
    return ChannelView(id=row.id, name=row.name, reported_status=row.status, ptz_type=row.ptz_type,
                       grid=camera.grid if camera else None, tier=camera.tier if camera else None, media=media,
                       cause=cause, since=since)


def devices(state: AppState) -> list[DeviceView]:
    """Every device a technician added, with its channels; four queries, whatever the number of devices."""
    config = state.settings.gb28181
    stale_after = config.keepalive_interval * config.keepalive_count
    now = state.now()
    with state.catalog.session() as session:
        device_rows = list(session.scalars(select(Gb28181DeviceRow).order_by(Gb28181DeviceRow.id)))
        channel_rows = list(session.scalars(select(Gb28181ChannelRow).order_by(Gb28181ChannelRow.device_id,
                                                                                Gb28181ChannelRow.id)))
        cameras = {row.id: row for row in session.scalars(
            select(CameraRow).where(CameraRow.main_rtsp_url.startswith(GB28181_URL_PREFIX)))}
        open_gaps: dict[str, GapRow] = {}
        if cameras:
            for gap in session.scalars(select(GapRow).where(GapRow.end_at.is_(None),
                                                            GapRow.camera_id.in_(sorted(cameras)))
                                       .order_by(GapRow.start_at)):
                open_gaps[gap.camera_id] = gap  # the newest open gap wins
    by_device: dict[str, list[ChannelView]] = {}
    for row in channel_rows:
        by_device.setdefault(row.device_id, []).append(_channel(row, cameras.get(row.id), open_gaps.get(row.id)))
    views = []
    for row in device_rows:
        age = (now - row.last_keepalive_at).total_seconds() if row.last_keepalive_at else None
        online = bool(row.online and age is not None and age <= stale_after
                      and (row.expires_at is None or row.expires_at > now))
        views.append(DeviceView(
            id=row.id, name=row.name, manufacturer=row.manufacturer, model=row.model, firmware=row.firmware,
            transport=row.transport, address=f"{row.host}:{row.port}" if row.host else "", online=online,
            registered_at=row.registered_at, expires_at=row.expires_at, last_keepalive_at=row.last_keepalive_at,
            keepalive_age_seconds=round(age, 1) if age is not None else None,
            channels=by_device.get(row.id, [])))
    return views


def to_json(view: DeviceView) -> dict:
    data = asdict(view)
    for name in ("registered_at", "expires_at", "last_keepalive_at"):
        data[name] = data[name].isoformat() if data[name] else None
    for channel in data["channels"]:
        channel["since"] = channel["since"].isoformat() if channel["since"] else None
    return data
