"""Capacity forecast: bytes each point needs to keep its floor, from measured bitrates, against capacity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jifang.retention.ledger import Ledger
from jifang.retention.policy import window_start

from jifang.config import Settings


@dataclass(frozen=True)
class PointForecast:
    camera: str
    tier: str
    bitrate_bps: float | None  # measured over the sample days; None when nothing was recorded
    floor_seconds: float
    bytes_needed: float


def forecast(settings: Settings, ledger: Ledger, now: datetime, sample_days: int = 7,
             assumed_bitrate_bps: float = 4_000_000) -> list[PointForecast]:
    """Per point: measured bitrate (bytes / covered seconds over the last ``sample_days`` days, or
    ``assumed_bitrate_bps`` for points without data) x the length of its required window."""
    since = (now - timedelta(days=sample_days)).date()
    out = []
    for camera in settings.cameras:
        days = [d for d in ledger.camera_days(camera.id) if d.day >= since]
        seconds = sum(d.covered_seconds for d in days)
        bitrate = 8 * sum(d.bytes for d in days) / seconds if seconds > 0 else None
        floor_seconds = (now - window_start(now, camera.tier)).total_seconds()
        rate = bitrate if bitrate is not None else assumed_bitrate_bps
        out.append(PointForecast(camera.id, str(camera.tier), bitrate, floor_seconds, rate / 8 * floor_seconds))
    return out


def by_tier(points: list[PointForecast]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for point in points:
        totals[point.tier] = totals.get(point.tier, 0.0) + point.bytes_needed
    return totals
