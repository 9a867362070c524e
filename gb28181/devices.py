"""The GB/T 28181 device and channel tables: who may register, where each device is, what its Catalog lists.

A device must be added by a technician (with its SIP password, encrypted at rest like camera passwords)
before it can register. A channel reported by a Catalog is only listed; it records once a technician assigns
it a grid and tier, which registers it as a camera point (``gb28181://DEVICE/CHANNEL``) in the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from jifang.gb28181.manscdp import ChannelItem
from sqlalchemy import select

from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.db.models import CameraRow, Gb28181ChannelRow, Gb28181DeviceRow
from jifang.domain import GB28181_URL_PREFIX, camera_id_problem
from jifang.errors import ConfigError
from jifang.registry import NewCamera, Registry


def channel_url(device_id: str, channel_id: str) -> str:
    return f"{GB28181_URL_PREFIX}{device_id}/{channel_id}"


def split_channel_url(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    device, _, channel = rest.partition("/")
    return device, channel.strip("/")


def _valid_device_id(device_id: str) -> None:
    if not (device_id.isdigit() and len(device_id) == 20):
        raise ConfigError(f"device ID {device_id!r}: must be 20 digits (GB/T 28181)")


class DeviceStore:
    def __init__(self, catalog: Catalog, box: SecretBox | None) -> None:
        self.catalog = catalog
        self.box = box

    def _box(self) -> SecretBox:
        if self.box is None:
            raise ConfigError("no registry key: set JIFANG_REGISTRY_KEY (or registry.key in the configuration); "
                              "GB/T 28181 device passwords are stored encrypted")
        return self.box

    # devices

    def add_device(self, device_id: str, password: str, name: str, at: datetime) -> None:
        _valid_device_id(device_id)
        if not password:
            raise ConfigError(f"device {device_id}: a SIP password is required")
        with self.catalog.session() as session:
            row = session.get(Gb28181DeviceRow, device_id)
            token = self._box().encrypt(password)
            if row is None:
                session.add(Gb28181DeviceRow(id=device_id, name=name, password_encrypted=token, transport="",
                                             host="", port=0, online=False, manufacturer="", model="", firmware="",
                                             added_at=at))
            else:
                row.password_encrypted, row.name = token, name or row.name
            session.commit()

    def device(self, device_id: str) -> Gb28181DeviceRow | None:
        with self.catalog.session() as session:
            return session.get(Gb28181DeviceRow, device_id)

    def devices(self) -> list[Gb28181DeviceRow]:
        with self.catalog.session() as session:
            return list(session.scalars(select(Gb28181DeviceRow).order_by(Gb28181DeviceRow.id)))

    def password(self, device_id: str) -> str | None:
        row = self.device(device_id)
        return self._box().decrypt(row.password_encrypted) if row is not None else None

    def registered(self, device_id: str, host: str, port: int, transport: str, at: datetime,
                   expires_at: datetime) -> None:
        with self.catalog.session() as session:
            row = session.get(Gb28181DeviceRow, device_id)
            if row is not None:
                row.host, row.port, row.transport = host, port, transport
                row.registered_at, row.expires_at, row.online = at, expires_at, True
                row.last_keepalive_at = at
                session.commit()

    def set_online(self, device_id: str, online: bool, keepalive_at: datetime | None = None) -> None:
        with self.catalog.session() as session:
            row = session.get(Gb28181DeviceRow, device_id)
            if row is not None:
                row.online = online
                if keepalive_at is not None:
                    row.last_keepalive_at = keepalive_at
                session.commit()

    def device_info(self, device_id: str, manufacturer: str, model: str, firmware: str) -> None:
        with self.catalog.session() as session:
            row = session.get(Gb28181DeviceRow, device_id)
            if row is not None:
                row.manufacturer, row.model, row.firmware = manufacturer[:100], model[:100], firmware[:100]
                session.commit()

    # channels

    def update_channels(self, device_id: str, items: Iterable[ChannelItem], at: datetime) -> int:
        count = 0
        with self.catalog.session() as session:
            for item in items:
                if not (item.id.isdigit() and len(item.id) == 20):
                    continue
                row = session.get(Gb28181ChannelRow, item.id) or Gb28181ChannelRow(id=item.id)
                row.device_id, row.name, row.status = device_id, item.name[:100], item.status[:16]
                row.ptz_type, row.parent = item.ptz_type, item.parent[:64]
                row.manufacturer, row.model, row.updated_at = item.manufacturer[:100], item.model[:100], at
                session.merge(row)
                count += 1
            session.commit()
        return count

    def channels(self, device_id: str | None = None) -> list[Gb28181ChannelRow]:
        with self.catalog.session() as session:
            query = select(Gb28181ChannelRow).order_by(Gb28181ChannelRow.device_id, Gb28181ChannelRow.id)
            if device_id:
                query = query.where(Gb28181ChannelRow.device_id == device_id)
            return list(session.scalars(query))

    def assigned(self) -> dict[str, CameraRow]:
        """The registered cameras that are GB/T 28181 channels, by channel ID."""
        with self.catalog.session() as session:
            rows = session.scalars(select(CameraRow).where(CameraRow.main_rtsp_url.startswith(GB28181_URL_PREFIX)))
            return {row.id: row for row in rows}

    def assign(self, registry: Registry, channel_id: str, grid: str, tier: str, actor: str, at: datetime,
               name: str | None = None, signage: bool = False, purpose: str = "", location: str = "") -> CameraRow:
        """Register the channel as a camera point of ``grid`` at ``tier``: from now on it is recorded."""
        with self.catalog.session() as session:
            channel = session.get(Gb28181ChannelRow, channel_id)
        if channel is None:
            raise ConfigError(f"channel {channel_id} is not in any device's catalog: see 'jifang gb28181 channels'")
        problem = camera_id_problem(channel_id)
        if problem:
            raise ConfigError(f"channel ID {channel_id}: {problem}")
        return registry.add_camera(NewCamera(
            id=channel_id, name=name or channel.name or channel_id, grid=grid, tier=tier,
            main_rtsp_url=channel_url(channel.device_id, channel_id), manufacturer=channel.manufacturer,
            model=channel.model, signage=signage, purpose=purpose, location=location), actor, at)
