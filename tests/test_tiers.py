"""The one calendar of jifang: floors in local calendar months of the site's time zone, never shorter than the
wall calendar says, never shorter than the national 30 days; month ends, leap years and DST zones."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from jifang.tiers import MediaKind, Tier, add_months, floor_of, floor_start, retain_until

CST = ZoneInfo("Asia/Shanghai")
# China (no DST), two DST zones (one hour), Lord Howe (a half-hour DST step), and one south of the equator
ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC))
zones = st.sampled_from(ZONES)
tiers, kinds = st.sampled_from(list(Tier)), st.sampled_from(list(MediaKind))


def wall(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


@given(moments, tiers, kinds, zones)
def test_never_earlier_than_the_local_calendar_floor(end: datetime, tier: Tier, kind: MediaKind, tz: str) -> None:
    until = retain_until(end, tier, kind, tz)
    floor = floor_of(tier, kind)
    # the wall calendar of the site (relativedelta clamps 31 Jan + 1 month to 28 Feb: ours is never earlier)
    assert wall(until, tz) >= wall(end, tz) + relativedelta(months=floor.months, days=floor.days)
    assert until >= end + timedelta(days=30)
    # a local midnight (or the first instant of a day whose midnight a DST change skips)
    local = until.astimezone(ZoneInfo(tz))
    assert (local.minute, local.second, local.microsecond) == (0, 0, 0) and local.hour <= 1
    assert until - end < timedelta(days=31 * floor.months + floor.days + 4)


@given(moments, moments, tiers, kinds, zones)
def test_monotonic_in_capture_end(a: datetime, b: datetime, tier: Tier, kind: MediaKind, tz: str) -> None:
    early, late = sorted((a, b))
    assert retain_until(early, tier, kind, tz) <= retain_until(late, tier, kind, tz)


@given(moments, kinds, zones)
def test_higher_tiers_keep_at_least_as_long(end: datetime, kind: MediaKind, tz: str) -> None:
    assert retain_until(end, Tier.KEY, kind, tz) >= retain_until(end, Tier.IMPORTANT, kind, tz)
    assert retain_until(end, Tier.IMPORTANT, kind, tz) >= retain_until(end, Tier.GENERAL, kind, tz)


@given(moments, tiers, kinds, zones)
def test_window_and_locks_agree(now: datetime, tier: Tier, kind: MediaKind, tz: str) -> None:
    """Whatever was captured at the start of the window the audit asks for is still locked now: the window never
    asks for less than the locks keep, and never for video a lock already let go."""
    start = floor_start(now, tier, kind, tz)
    assert start <= now - timedelta(days=30)
    assert retain_until(start, tier, kind, tz) >= now
    # and no longer than the wall calendar asks (a missing month day rolls to the 1st; a DST step: its size)
    floor = floor_of(tier, kind)
    oracle = wall(now, tz) - relativedelta(months=floor.months, days=floor.days)
    assert wall(start, tz) <= oracle + timedelta(days=1, hours=2)


@pytest.mark.parametrize(
    ("end", "tier", "kind", "expected"),
    [
        # the standard's floors, in China Standard Time: key video 3 months, key images 1 year, important video
        # 1 month, important images 6 months, general 30 days; rounded up to the next local midnight
        (datetime(2026, 11, 27, 16, 0, tzinfo=CST), Tier.KEY, MediaKind.VIDEO, datetime(2027, 2, 28, tzinfo=CST)),
        (datetime(2026, 11, 27, 16, 0, tzinfo=CST), Tier.KEY, MediaKind.IMAGE, datetime(2027, 11, 28, tzinfo=CST)),
        (datetime(2026, 11, 27, 16, 0, tzinfo=CST), Tier.IMPORTANT, MediaKind.VIDEO,
         datetime(2026, 12, 28, tzinfo=CST)),
        (datetime(2026, 11, 27, 16, 0, tzinfo=CST), Tier.IMPORTANT, MediaKind.IMAGE,
         datetime(2027, 5, 28, tzinfo=CST)),
        (datetime(2026, 11, 27, 16, 0, tzinfo=CST), Tier.GENERAL, MediaKind.VIDEO, datetime(2026, 12, 28, tzinfo=CST)),
        # the case: captured 1 May 05:00 China time is kept past 1 August 05:00 China time (not 31 July)
        (datetime(2026, 5, 1, 5, 0, tzinfo=CST), Tier.KEY, MediaKind.VIDEO, datetime(2026, 8, 2, tzinfo=CST)),
        # 31 January + 6 months is 31 July; 31 March + 1 month does not exist: the floor runs to 1 May
        (datetime(2027, 1, 31, 12, 0, tzinfo=CST), Tier.IMPORTANT, MediaKind.IMAGE, datetime(2027, 8, 1, tzinfo=CST)),
        (datetime(2027, 3, 31, 12, 0, tzinfo=CST), Tier.IMPORTANT, MediaKind.VIDEO, datetime(2027, 5, 1, tzinfo=CST)),
        # February is shorter than the national 30-day floor, which wins
        (datetime(2027, 2, 1, 12, 0, tzinfo=CST), Tier.IMPORTANT, MediaKind.VIDEO, datetime(2027, 3, 4, tzinfo=CST)),
        # 30 November + 3 months: 30 February does not exist
        (datetime(2027, 11, 30, 0, 0, tzinfo=CST), Tier.KEY, MediaKind.VIDEO, datetime(2028, 3, 1, tzinfo=CST)),
        # 29 February + 1 year
        (datetime(2028, 2, 29, 23, 59, tzinfo=CST), Tier.KEY, MediaKind.IMAGE, datetime(2029, 3, 1, tzinfo=CST)),
        # exactly midnight stays on that day
        (datetime(2026, 1, 1, tzinfo=CST), Tier.IMPORTANT, MediaKind.VIDEO, datetime(2026, 2, 1, tzinfo=CST)),
    ],
)
def test_examples_in_china_time(end: datetime, tier: Tier, kind: MediaKind, expected: datetime) -> None:
    assert retain_until(end, tier, kind) == expected
    assert retain_until(end.astimezone(UTC), tier, kind, "Asia/Shanghai") == expected


def test_utc_months_would_be_short() -> None:
    """Counted in UTC (the old behaviour), 1 May 05:00 China time (30 April 21:00 UTC) + 3 months was locked until
    31 July 08:00 China time, 21 h short of 1 August 05:00; in China time it runs to the midnight after."""
    captured = datetime(2026, 5, 1, 5, 0, tzinfo=CST)
    in_utc = retain_until(captured, Tier.KEY, MediaKind.VIDEO, "UTC")
    assert in_utc == datetime(2026, 7, 31, 8, 0, tzinfo=CST)
    assert datetime(2026, 8, 1, 5, 0, tzinfo=CST) - in_utc == timedelta(hours=21)
    assert retain_until(captured, Tier.KEY, MediaKind.VIDEO) == datetime(2026, 8, 2, tzinfo=CST)


def test_a_wall_time_skipped_by_dst_takes_the_later_reading() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 29 December 02:30 + 3 months = 29 March 02:30, which the spring-forward skips: 03:30 CEST (01:30 UTC)
    start = datetime(2025, 12, 29, 2, 30, tzinfo=berlin)
    assert add_months(start, 3, "Europe/Berlin") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # and counted back, the earlier reading: the window is not shorter either
    assert add_months(datetime(2026, 6, 29, 2, 30, tzinfo=berlin), -3, "Europe/Berlin") == datetime(
        2026, 3, 29, 0, 30, tzinfo=UTC)
    # the lock ends at local midnight after, in summer time
    until = retain_until(start, Tier.KEY, MediaKind.VIDEO, "Europe/Berlin")
    assert until == datetime(2026, 3, 30, tzinfo=berlin)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retain_until(datetime(2026, 1, 1), Tier.KEY, MediaKind.VIDEO)


def test_thirty_days_is_not_a_month() -> None:
    assert add_months(datetime(2027, 1, 15, tzinfo=CST), 1) == datetime(2027, 2, 15, tzinfo=CST)
    assert add_months(datetime(2027, 3, 15, tzinfo=CST), 1) == datetime(2027, 4, 15, tzinfo=CST)
    assert add_months(datetime(2027, 3, 31, tzinfo=CST), -1) == datetime(2027, 3, 1, tzinfo=CST)


def test_the_site_time_zone_is_a_setting() -> None:
    from jifang.config import parse_settings
    from jifang.errors import ConfigError

    assert parse_settings({"version": 1}, "t", environ={}).timezone == "Asia/Shanghai"
    assert parse_settings({"version": 1, "timezone": "Europe/Berlin"}, "t", environ={}).timezone == "Europe/Berlin"
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse_settings({"version": 1, "timezone": "Mars/Olympus"}, "t", environ={})
