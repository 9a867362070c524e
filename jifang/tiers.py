"""Retention tiers of DB3310/T 55-2019 §8.3.2 and the one calendar of jifang: every month computation (locks,
audit windows, expiry maximums, forecasts) goes through ``add_months`` in the site's time zone.

Retention is a floor: ``retain_until`` never returns a moment earlier than ``capture_end`` plus the tier's floor in
local calendar months (a month is not 30 days; "three months" is what a local wall calendar says), never less than
the national 30 days, rounded up to the next local midnight.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"  # the standard is a Taizhou (Zhejiang) one: China Standard Time


class Tier(enum.StrEnum):
    KEY = "key"  # 重点涉恐涉稳点位: counter-terror / stability key points
    IMPORTANT = "important"  # 重要部位: important grid locations
    GENERAL = "general"  # other cameras: the national 30-day floor


# what users read for each tier, (Chinese, English): the dashboard and the printed reports
TIER_NAMES: dict[str, tuple[str, str]] = {
    Tier.KEY: ("重点涉恐涉稳点位", "key point"),
    Tier.IMPORTANT: ("重要部位", "important location"),
    Tier.GENERAL: ("一般点位", "general"),
}


class MediaKind(enum.StrEnum):
    VIDEO = "video"
    IMAGE = "image"


@dataclass(frozen=True)
class Floor:
    months: int = 0
    days: int = 0


FLOORS: dict[tuple[Tier, MediaKind], Floor] = {
    (Tier.KEY, MediaKind.VIDEO): Floor(months=3),
    (Tier.KEY, MediaKind.IMAGE): Floor(months=12),
    (Tier.IMPORTANT, MediaKind.VIDEO): Floor(months=1),
    (Tier.IMPORTANT, MediaKind.IMAGE): Floor(months=6),
    (Tier.GENERAL, MediaKind.VIDEO): Floor(days=30),
    (Tier.GENERAL, MediaKind.IMAGE): Floor(days=30),
}


# The national floor for any surveillance video and image: 30 days. It also applies to tiers counted in
# months, because one calendar month (February) can be shorter than 30 days.
NATIONAL_FLOOR = timedelta(days=30)


def floor_of(tier: Tier, kind: MediaKind) -> Floor:
    return FLOORS[(Tier(tier), MediaKind(kind))]


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment


def _resolve(wall: datetime, tz: ZoneInfo, later: bool) -> datetime:
    """The UTC instant of local wall time ``wall``. A wall time a DST change skips or repeats has two readings;
    take the later one when a floor is added (it must not come out short) and the earlier one when a window is
    counted back (it must not come out short either)."""
    readings = [wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]
    return max(readings) if later else min(readings)


def add_months(moment: datetime, months: int, tz: str = DEFAULT_TIMEZONE) -> datetime:
    """``moment`` plus ``months`` (may be negative) calendar months of the wall calendar in ``tz``, as UTC.

    When the day does not exist in the target month (31 January + 1 month, 31 May - 3 months) the result is the
    first instant of the following month, never the clamped last day: going forward a floor must not come out
    shorter, and going back an object captured on that missing day's successor is still inside the window."""
    local_zone = zone(tz)
    local = _aware(moment).astimezone(local_zone).replace(tzinfo=None)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if local.day > calendar.monthrange(year, month)[1]:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        wall = local.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        wall = local.replace(year=year, month=month)
    return _resolve(wall, local_zone, later=months >= 0)


def ceil_to_local_day(moment: datetime, tz: str = DEFAULT_TIMEZONE) -> datetime:
    """The first local midnight at or after ``moment``, as UTC."""
    local_zone = zone(tz)
    local = _aware(moment).astimezone(local_zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    at = _resolve(midnight, local_zone, later=True)
    if at < moment:
        at = _resolve(midnight + timedelta(days=1), local_zone, later=True)
    return at


def retain_until(capture_end: datetime, tier: Tier | str, kind: MediaKind | str,
                 tz: str = DEFAULT_TIMEZONE) -> datetime:
    """The earliest moment (UTC) an object captured until ``capture_end`` may be deleted."""
    if capture_end.tzinfo is None:
        raise ValueError("capture_end must be timezone-aware")
    end = capture_end.astimezone(UTC)
    floor = floor_of(Tier(tier), MediaKind(kind))
    by_calendar = add_months(end, floor.months, tz) + timedelta(days=floor.days)
    return ceil_to_local_day(max(by_calendar, end + NATIONAL_FLOOR), tz)


def floor_start(now: datetime, tier: Tier | str, kind: MediaKind | str = MediaKind.VIDEO,
                tz: str = DEFAULT_TIMEZONE) -> datetime:
    """How far back a point must be able to show at ``now``: the tier's floor in local calendar months, and never
    less than the national 30 days."""
    floor = floor_of(Tier(tier), MediaKind(kind))
    by_calendar = add_months(_aware(now).astimezone(UTC), -floor.months, tz) - timedelta(days=floor.days)
    return min(by_calendar, now.astimezone(UTC) - NATIONAL_FLOOR)
