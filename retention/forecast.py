"""Capacity forecast: bytes each point needs to keep its floors, video and images, from measured rates, against
capacity. Floors are the tiers' local calendar months (``jifang.tiers``), as of the forecast's moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jifang.retention.ledger import Ledger
from jifang.retention.policy import window_start

from jifang.config import Settings
from jifang.store import ObjectStore
from jifang.tiers import MediaKind


@dataclass(frozen=True)
class PointForecast:
    camera: str
    tier: str
    bitrate_bps: float | None  # measured over the sample days; None when nothing was recorded
    floor_seconds: float
    bytes_needed: float
    image_bytes_per_day: float = 0.0  # measured over the sample days from the image store
    image_floor_seconds: float = 0.0
    image_bytes_needed: float = 0.0

    @property
    def total_bytes(self) -> float:
        return self.bytes_needed + self.image_bytes_needed


def image_bytes(store: ObjectStore, camera_id: str, since: datetime) -> float:
    """Bytes of the camera's images captured since ``since`` (snapshots, evidence, plate crops)."""
    return float(sum(stored.size for stored in store.list(MediaKind.IMAGE, f"images/{camera_id}/")
                     if stored.meta is not None and stored.meta.capture_end >= since))


def forecast(settings: Settings, ledger: Ledger, now: datetime, sample_days: int = 7,
             assumed_bitrate_bps: float = 4_000_000, store: ObjectStore | None = None) -> list[PointForecast]:
    """Per point: measured bitrate (bytes / covered seconds over the last ``sample_days`` days, or
    ``assumed_bitrate_bps`` for points without data) x the length of its video window, plus the measured image
    bytes per day (when a ``store`` is given) x the length of its image window."""
    since = now - timedelta(days=sample_days)
    out = []
    tz = settings.timezone
    for camera in settings.cameras:
        days = [d for d in ledger.camera_days(camera.id) if d.day >= since.date()]
        seconds = sum(d.covered_seconds for d in days)
        bitrate = 8 * sum(d.bytes for d in days) / seconds if seconds > 0 else None
        floor_seconds = (now - window_start(now, camera.tier, MediaKind.VIDEO, tz)).total_seconds()
        image_floor = (now - window_start(now, camera.tier, MediaKind.IMAGE, tz)).total_seconds()
        per_day = image_bytes(store, camera.id, since) / sample_days if store is not None else 0.0
        rate = bitrate if bitrate is not None else assumed_bitrate_bps
        out.append(PointForecast(camera.id, str(camera.tier), bitrate, floor_seconds, rate / 8 * floor_seconds,
                                 per_day, image_floor, per_day * image_floor / 86400))
    return out


def by_tier(points: list[PointForecast]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for point in points:
        totals[point.tier] = totals.get(point.tier, 0.0) + point.total_bytes
    return totals
