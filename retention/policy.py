"""Pure retention decisions: required windows, lock margins, expiry. No I/O; every time is an argument."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

from jifang.tiers import NATIONAL_FLOOR, MediaKind, Tier, floor_of, retain_until


def window_start(now: datetime, tier: Tier | str, kind: MediaKind = MediaKind.VIDEO) -> datetime:
    """Start of the window a point must be able to show: ``now`` minus the tier's floor (calendar months,
    never less than the national 30 days)."""
    floor = floor_of(Tier(tier), kind)
    by_calendar = now - relativedelta(months=floor.months) - timedelta(days=floor.days)
    return min(by_calendar, now - NATIONAL_FLOOR)


def required_lock(capture_end: datetime, tier: Tier | str, kind: MediaKind = MediaKind.VIDEO) -> datetime:
    """The retain-until an object needs *now*: its current tier's floor from its own capture end."""
    return retain_until(capture_end, tier, kind)


def lock_target(current: datetime | None, capture_end: datetime, tier: Tier | str,
                kind: MediaKind = MediaKind.VIDEO) -> datetime | None:
    """The retain-until to set, or None when the object's lock is already long enough. Never earlier than
    ``current``: lowering a tier never shortens a lock."""
    needed = required_lock(capture_end, tier, kind)
    if current is not None and current >= needed:
        return None
    return needed


def expiry_due(capture_end: datetime, tier: Tier | str, max_months: int | None, now: datetime,
               lock_until: datetime | None, held: bool, kind: MediaKind = MediaKind.VIDEO) -> bool:
    """True when an object may and should be deleted: a maximum is configured, the floor plus that maximum
    has passed, its lock has passed, and no legal hold applies."""
    if max_months is None or held:
        return False
    floor_end = required_lock(capture_end, tier, kind)
    if now < floor_end + relativedelta(months=max_months):
        return False
    return lock_until is None or lock_until <= now
