"""Pure retention decisions: required windows, lock margins, expiry. No I/O; every time is an argument, and every
month is a local calendar month of the site's time zone (``jifang.tiers.add_months``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from jifang.tiers import (
    DEFAULT_TIMEZONE,
    NATIONAL_FLOOR,
    MediaKind,
    Tier,
    add_months,
    floor_of,
    floor_start,
    retain_until,
)


def window_start(now: datetime, tier: Tier | str, kind: MediaKind = MediaKind.VIDEO,
                 tz: str = DEFAULT_TIMEZONE) -> datetime:
    """Start of the window a point must be able to show: ``now`` minus the tier's floor (local calendar months,
    never less than the national 30 days)."""
    return floor_start(now, tier, kind, tz)


def window_complete_at(registered_at: datetime, tier: Tier | str, kind: MediaKind = MediaKind.VIDEO,
                       tz: str = DEFAULT_TIMEZONE) -> datetime:
    """When the window of a point registered at ``registered_at`` first spans its whole floor."""
    floor = floor_of(Tier(tier), kind)
    by_calendar = add_months(registered_at, floor.months, tz) + timedelta(days=floor.days)
    return max(by_calendar, registered_at + NATIONAL_FLOOR)


def settle_seconds(segment_seconds: int, configured: int | None) -> float:
    """How long before now the audit window ends: the segment being recorded, plus the time to close, validate and
    catalogue it (one more segment, at least 10 s). A configured value wins."""
    if configured is not None:
        return float(configured)
    return float(segment_seconds + max(segment_seconds, 10))


def required_lock(capture_end: datetime, tier: Tier | str, kind: MediaKind = MediaKind.VIDEO,
                  tz: str = DEFAULT_TIMEZONE) -> datetime:
    """The retain-until an object needs *now*: its current tier's floor from its own capture end."""
    return retain_until(capture_end, tier, kind, tz)


def lock_target(current: datetime | None, capture_end: datetime, tier: Tier | str,
                kind: MediaKind = MediaKind.VIDEO, tz: str = DEFAULT_TIMEZONE) -> datetime | None:
    """The retain-until to set, or None when the object's lock is already long enough. Never earlier than
    ``current``: lowering a tier never shortens a lock."""
    needed = required_lock(capture_end, tier, kind, tz)
    if current is not None and current >= needed:
        return None
    return needed


def expiry_due(capture_end: datetime, tier: Tier | str, max_months: int | None, now: datetime,
               lock_until: datetime | None, held: bool, kind: MediaKind = MediaKind.VIDEO,
               tz: str = DEFAULT_TIMEZONE) -> bool:
    """True when an object may and should be deleted: a maximum is configured, the floor plus that maximum
    has passed, its lock has passed, and no legal hold applies."""
    if max_months is None or held:
        return False
    floor_end = required_lock(capture_end, tier, kind, tz)
    if now < add_months(floor_end, max_months, tz):
        return False
    return lock_until is None or lock_until <= now
