"""The coverage timeline of one point: a days x hours grid (China Standard Time) over its required window, at most
the last 92 days. Each hour cell is recorded, an explained gap (camera offline, before registration: not
violations) or a violation (a hole nobody explained, lost or short-locked video), from the point's audit: the gaps
of the audit cover every second of the window without video, so no further query is needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from jifang.retention.coverage import PointAudit

CST = timezone(timedelta(hours=8))
MAX_DAYS = 92
HOUR = timedelta(hours=1)
RECORDED, EXPLAINED, VIOLATION, OUTSIDE = "recorded", "explained_gap", "violation", "outside_window"


@dataclass
class Day:
    date: str  # YYYY-MM-DD, China Standard Time
    cells: list[str]  # 24 states, one per hour


def timeline(audit: PointAudit, max_days: int = MAX_DAYS) -> list[Day]:
    """Newest day first. A cell with any violating second is a violation; else with any explained gap, an
    explained gap; else recorded. Hours outside the window (before it or in the future) are outside_window."""
    hi = audit.window_end
    lo = max(audit.window_start, hi - timedelta(days=max_days))
    first = datetime.combine(lo.astimezone(CST).date(), datetime.min.time(), CST)
    last = datetime.combine(hi.astimezone(CST).date(), datetime.min.time(), CST) + timedelta(days=1)
    hours = int((last - first) / HOUR)
    violation = [0.0] * hours
    explained = [0.0] * hours
    for gap in audit.gaps:
        start, end = max(gap.start, lo), min(gap.end, hi)
        if end <= start:
            continue
        target = violation if gap.violation else explained
        index = int((start - first) // HOUR)
        while index < hours:
            cell_start = first + index * HOUR
            if cell_start >= end:
                break
            overlap = (min(end, cell_start + HOUR) - max(start, cell_start)).total_seconds()
            if overlap > 0:
                target[index] += overlap
            index += 1
    days = []
    for day in range(hours // 24):
        cells = []
        for hour in range(24):
            index = day * 24 + hour
            cell_start = first + index * HOUR
            if cell_start + HOUR <= lo or cell_start >= hi:
                cells.append(OUTSIDE)
            elif violation[index] > 0:
                cells.append(VIOLATION)
            elif explained[index] > 0:
                cells.append(EXPLAINED)
            else:
                cells.append(RECORDED)
        days.append(Day((first + timedelta(days=day)).date().isoformat(), cells))
    return days[::-1]


def to_json(audit: PointAudit, days: list[Day]) -> dict:
    return {"camera": audit.camera, "grid": audit.grid, "tier": audit.tier, "timezone": "+08:00",
            "window_start": audit.window_start.astimezone(UTC).isoformat(),
            "window_end": audit.window_end.astimezone(UTC).isoformat(),
            "days": [{"date": d.date, "hours": d.cells} for d in days]}
