"""Coverage audit of one point: which parts of its required window hold video, which do not and why, and
the verdict. Pure: the caller fetches spans, ledger gaps and lock margins; nothing here touches I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jifang.domain import GapCause

# Causes the recorder or the jobs explain; anything else in the window is `not_recorded`.
NOT_A_VIOLATION = {GapCause.BEFORE_REGISTRATION, GapCause.CAMERA_OFFLINE, GapCause.DEVICE_OFFLINE,
                   GapCause.MEDIA_TIMEOUT, GapCause.INVITE_REFUSED}
# Causes that take away coverage that the spans would otherwise show.
LOSSES = {GapCause.OBJECT_MISSING, GapCause.UPLOAD_FAILED, GapCause.LOCK_TOO_SHORT}

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    cause: GapCause
    detail: str = ""

    @property
    def violation(self) -> bool:
        return self.cause not in NOT_A_VIOLATION

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class PointAudit:
    camera: str
    grid: str
    tier: str
    window_start: datetime
    window_end: datetime
    covered_seconds: float
    required_seconds: float
    gaps: list[Gap] = field(default_factory=list)
    min_lock_margin_seconds: float | None = None

    @property
    def coverage(self) -> float:
        return 1.0 if self.required_seconds <= 0 else min(1.0, self.covered_seconds / self.required_seconds)

    @property
    def compliant(self) -> bool:
        locks_ok = self.min_lock_margin_seconds is None or self.min_lock_margin_seconds >= 0
        return locks_ok and not any(gap.violation for gap in self.gaps)


def merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def clip(intervals: list[Interval], lo: datetime, hi: datetime) -> list[Interval]:
    return [(max(s, lo), min(e, hi)) for s, e in intervals if e > lo and s < hi]


def subtract(base: list[Interval], cut: list[Interval]) -> list[Interval]:
    """``base`` minus ``cut`` (both merged and sorted)."""
    out: list[Interval] = []
    for start, end in base:
        cursor = start
        for c_start, c_end in cut:
            if c_end <= cursor or c_start >= end:
                continue
            if c_start > cursor:
                out.append((cursor, c_start))
            cursor = max(cursor, c_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def total(intervals: list[Interval]) -> float:
    return sum((e - s).total_seconds() for s, e in intervals)


def audit_point(
    *,
    camera: str,
    grid: str,
    tier: str,
    window: Interval,
    registered_at: datetime | None,
    spans: list[Interval],
    ledger: list[Gap],
    min_lock_margin_seconds: float | None,
    tolerance_seconds: float = 1.0,
) -> PointAudit:
    """Audit one point over ``window``.

    ``spans``: intervals holding catalogued video. ``ledger``: gap rows (recorder outages with their cause,
    and losses found by the jobs: object_missing, upload_failed, lock_too_short). Holes no ledger row explains
    are `not_recorded`; holes before ``registered_at`` are `before_registration` (not violations). Holes
    shorter than ``tolerance_seconds`` (segment boundaries) are ignored.
    """
    lo, hi = window
    spans = merge(clip(spans, lo, hi))
    gaps: list[Gap] = []
    if registered_at is not None and registered_at > lo:
        before = (lo, min(registered_at, hi))
        gaps.append(Gap(*before, GapCause.BEFORE_REGISTRATION))
        holes_from = before[1]
    else:
        holes_from = lo
    holes = subtract([(holes_from, hi)], spans) if holes_from < hi else []
    explained = sorted((g for g in ledger if g.cause not in LOSSES), key=lambda g: g.start)
    for hole_start, hole_end in holes:
        cursor = hole_start
        for gap in explained:
            start, end = max(gap.start, cursor), min(gap.end, hole_end)
            if end <= start:
                continue
            if (start - cursor).total_seconds() > tolerance_seconds:
                gaps.append(Gap(cursor, start, GapCause.NOT_RECORDED))
            gaps.append(Gap(start, end, gap.cause, gap.detail))
            cursor = end
        if (hole_end - cursor).total_seconds() > tolerance_seconds:
            gaps.append(Gap(cursor, hole_end, GapCause.NOT_RECORDED))
    losses = merge(clip([(g.start, g.end) for g in ledger if g.cause in LOSSES], lo, hi))
    for gap in ledger:
        if gap.cause in LOSSES:
            for start, end in clip([(gap.start, gap.end)], lo, hi):
                gaps.append(Gap(start, end, gap.cause, gap.detail))
    covered = total(subtract(spans, losses))
    required = (hi - max(lo, registered_at or lo)).total_seconds() if (registered_at or lo) < hi else 0.0
    gaps.sort(key=lambda g: (g.start, g.end))
    return PointAudit(camera, grid, tier, lo, hi, covered, max(0.0, required), gaps, min_lock_margin_seconds)
