from datetime import UTC, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from jifang.tiers import MediaKind, Tier, add_calendar_months, floor_of, retain_until

moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC))


def calendar_floor(end: datetime, tier: Tier, kind: MediaKind) -> datetime:
    floor = floor_of(tier, kind)
    return max(end + relativedelta(months=floor.months) + timedelta(days=floor.days), end + timedelta(days=30))


@given(moments, st.sampled_from(list(Tier)), st.sampled_from(list(MediaKind)))
def test_never_earlier_than_the_calendar_floor(end: datetime, tier: Tier, kind: MediaKind) -> None:
    until = retain_until(end, tier, kind)
    assert until >= calendar_floor(end, tier, kind)
    # rounded up to a UTC day boundary, and by less than a day plus the overflow of a missing month day
    assert (until.hour, until.minute, until.second, until.microsecond) == (0, 0, 0, 0)
    assert until - calendar_floor(end, tier, kind) < timedelta(days=4)


@given(moments, moments, st.sampled_from(list(Tier)), st.sampled_from(list(MediaKind)))
def test_monotonic_in_capture_end(a: datetime, b: datetime, tier: Tier, kind: MediaKind) -> None:
    early, late = sorted((a, b))
    assert retain_until(early, tier, kind) <= retain_until(late, tier, kind)


@given(moments, st.sampled_from(list(MediaKind)))
def test_higher_tiers_keep_at_least_as_long(end: datetime, kind: MediaKind) -> None:
    assert retain_until(end, Tier.KEY, kind) >= retain_until(end, Tier.IMPORTANT, kind)
    assert retain_until(end, Tier.IMPORTANT, kind) >= retain_until(end, Tier.GENERAL, kind)


@pytest.mark.parametrize(
    ("end", "tier", "kind", "expected"),
    [
        # the standard's floors: key video 3 months, key images 1 year, important video 1 month, images 6
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), Tier.KEY, MediaKind.VIDEO, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), Tier.KEY, MediaKind.IMAGE, datetime(2027, 11, 28, tzinfo=UTC)),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), Tier.IMPORTANT, MediaKind.VIDEO,
         datetime(2026, 12, 28, tzinfo=UTC)),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), Tier.IMPORTANT, MediaKind.IMAGE,
         datetime(2027, 5, 28, tzinfo=UTC)),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), Tier.GENERAL, MediaKind.VIDEO, datetime(2026, 12, 28, tzinfo=UTC)),
        # 31 January + 1 month does not exist: the floor runs to the end of February, not to 28 February noon
        (datetime(2027, 1, 31, 12, 0, tzinfo=UTC), Tier.IMPORTANT, MediaKind.IMAGE, datetime(2027, 8, 1, tzinfo=UTC)),
        (datetime(2027, 3, 31, 12, 0, tzinfo=UTC), Tier.IMPORTANT, MediaKind.VIDEO, datetime(2027, 5, 1, tzinfo=UTC)),
        # February is shorter than the national 30-day floor, which wins
        (datetime(2027, 2, 1, 12, 0, tzinfo=UTC), Tier.IMPORTANT, MediaKind.VIDEO, datetime(2027, 3, 4, tzinfo=UTC)),
        # 30 November + 3 months: 30 February does not exist
        (datetime(2027, 11, 30, 0, 0, tzinfo=UTC), Tier.KEY, MediaKind.VIDEO, datetime(2028, 3, 1, tzinfo=UTC)),
        # 29 February + 1 year
        (datetime(2028, 2, 29, 23, 59, tzinfo=UTC), Tier.KEY, MediaKind.IMAGE, datetime(2029, 3, 1, tzinfo=UTC)),
        # exactly midnight stays on that day
        (datetime(2026, 1, 1, tzinfo=UTC), Tier.IMPORTANT, MediaKind.VIDEO, datetime(2026, 2, 1, tzinfo=UTC)),
    ],
)
def test_examples(end: datetime, tier: Tier, kind: MediaKind, expected: datetime) -> None:
    assert retain_until(end, tier, kind) == expected


def test_local_time_is_converted_to_utc() -> None:
    from zoneinfo import ZoneInfo

    end = datetime(2026, 12, 1, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # 30 Nov 23:30 UTC
    assert retain_until(end, Tier.IMPORTANT, MediaKind.VIDEO) == datetime(2026, 12, 31, tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retain_until(datetime(2026, 1, 1), Tier.KEY, MediaKind.VIDEO)


def test_thirty_days_is_not_a_month() -> None:
    assert add_calendar_months(datetime(2027, 1, 15, tzinfo=UTC), 1) == datetime(2027, 2, 15, tzinfo=UTC)
    assert add_calendar_months(datetime(2027, 3, 15, tzinfo=UTC), 1) == datetime(2027, 4, 15, tzinfo=UTC)
