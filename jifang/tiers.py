"""Retention tiers of DB3310/T 55-2019 §8.3.2 and the one function that turns a capture time into the
earliest moment an object may be deleted.

Retention is a floor: ``retain_until`` never returns a moment earlier than ``capture_end`` plus the tier's
floor, computed in calendar months (a month is not 30 days) in UTC and rounded up to the next UTC midnight.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class Tier(enum.StrEnum):
    KEY = "key"  # 重点涉恐涉稳点位: counter-terror / stability key points
    IMPORTANT = "important"  # 重要部位: important grid locations
    GENERAL = "general"  # other cameras: the national 30-day floor


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


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months. When the day does not exist in the target month
    (31 January + 1 month) the result is the first instant of the following month, never the clamped
    last day: a floor must not come out shorter than the calendar says."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if moment.day > calendar.monthrange(year, month)[1]:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(year=year, month=month)


def ceil_to_utc_day(moment: datetime) -> datetime:
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def retain_until(capture_end: datetime, tier: Tier | str, kind: MediaKind | str) -> datetime:
    """The earliest UTC moment an object captured until ``capture_end`` may be deleted."""
    if capture_end.tzinfo is None:
        raise ValueError("capture_end must be timezone-aware")
    end = capture_end.astimezone(UTC)
    floor = floor_of(Tier(tier), MediaKind(kind))
    by_calendar = add_calendar_months(end, floor.months) + timedelta(days=floor.days)
    return ceil_to_utc_day(max(by_calendar, end + NATIONAL_FLOOR))
