"""Coverage audit of one point: which parts of its required window hold video, which do not and why, and the
verdict. Pure: the caller fetches spans, ledger gaps, custody and lock margins; nothing here touches I/O.

The verdict rule (shown in every report):

- The required window is ``[max(now - floor, registered_at), now - settle]``. Time before registration is not
  applicable (neither in the denominator nor a violation); the settle leaves out the segment being recorded.
- Every hole between catalogued video gets a cause from evidence written at the time: recorder outages from the
  gap ledger (camera_offline, store_unavailable, clock_step), agent custody rows (agent_offline, handover), the
  jobs' findings (upload_failed, object_missing, lock_too_short). A hole nothing explains is ``not_recorded``.
  Joins between consecutive segments up to ``tolerance_seconds`` are not holes.
- Violations: not_recorded intervals, lost/missing objects and short locks (upload_failed, object_missing,
  lock_too_short), a negative minimum lock margin, image objects deleted before their floor or locked short.
- Explained outages are not violations; they lower the coverage figure. With a per-tier minimum coverage set,
  coverage below it is a violation too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jifang.domain import GapCause

# Outages whose cause the recorder wrote down when they happened: explained, they lower the coverage only.
RECORDER_OUTAGES = {GapCause.CAMERA_OFFLINE, GapCause.STORE_UNAVAILABLE, GapCause.CLOCK_STEP, GapCause.DISK_FULL,
                    GapCause.DATABASE_UNAVAILABLE, GapCause.DEVICE_OFFLINE, GapCause.MEDIA_TIMEOUT,
                    GapCause.INVITE_REFUSED}
EXPLAINED = RECORDER_OUTAGES | {GapCause.AGENT_OFFLINE, GapCause.HANDOVER}
# Losses of video that the spans would otherwise show; always violations.
# recorded video that did not survive (a damaged spool file included): a violation, whatever its cause
LOSSES = {GapCause.OBJECT_MISSING, GapCause.UPLOAD_FAILED, GapCause.LOCK_TOO_SHORT, GapCause.SPOOL_CORRUPT}
VIOLATIONS = LOSSES | {GapCause.NOT_RECORDED}

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    cause: GapCause
    detail: str = ""

    @property
    def violation(self) -> bool:
        return self.cause in VIOLATIONS

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Custody:
    """An edge agent held (was recording) the camera from ``start`` until ``end``: its clean stop, or its last
    heartbeat plus the heartbeat period when it died."""

    agent: str
    start: datetime
    end: datetime
    stopped: bool  # True: a clean stop was written; False: the agent's heartbeats ended


@dataclass(frozen=True)
class ImageAudit:
    """The images of a point (snapshots, evidence JPEGs), from the last enforce pass's read-back of the store."""

    objects: int
    min_lock_margin_seconds: float | None
    held: int
    deleted_before_floor: int
    checked_at: datetime | None

    @property
    def problems(self) -> list[str]:
        out = []
        if self.min_lock_margin_seconds is not None and self.min_lock_margin_seconds < 0:
            out.append("image_lock_short")
        if self.deleted_before_floor:
            out.append("image_deleted_before_floor")
        return out


@dataclass(frozen=True)
class Finding:
    """One reason a point is not compliant: a code the reports localise, and the figures behind it."""

    code: str  # gap:<cause> | lock_margin | min_coverage | image_lock_short | image_deleted_before_floor
    detail: str


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
    floor_start: datetime | None = None  # where the floor alone would start the window
    registered_at: datetime | None = None
    complete_at: datetime | None = None  # when the window first spans the whole floor (None: it already does)
    settle_seconds: float = 0.0
    min_coverage: float | None = None
    images: ImageAudit | None = None
    locks_checked_at: datetime | None = None  # when the last enforce pass read the video locks back

    @property
    def coverage(self) -> float:
        return 1.0 if self.required_seconds <= 0 else min(1.0, self.covered_seconds / self.required_seconds)

    @property
    def findings(self) -> list[Finding]:
        out = []
        per_cause: dict[GapCause, float] = {}
        for gap in self.gaps:
            if gap.violation:
                per_cause[gap.cause] = per_cause.get(gap.cause, 0.0) + gap.seconds
        for cause, seconds in per_cause.items():
            out.append(Finding(f"gap:{cause}", f"{seconds:.0f} s"))
        if self.min_lock_margin_seconds is not None and self.min_lock_margin_seconds < 0:
            out.append(Finding("lock_margin", f"{self.min_lock_margin_seconds:.0f} s"))
        if self.min_coverage is not None and self.coverage < self.min_coverage:
            out.append(Finding("min_coverage", f"{100 * self.coverage:.2f}% < {100 * self.min_coverage:.2f}%"))
        if self.images is not None:
            for code in self.images.problems:
                out.append(Finding(code, str(self.images.deleted_before_floor if "deleted" in code
                                             else self.images.min_lock_margin_seconds)))
        return out

    @property
    def compliant(self) -> bool:
        return not self.findings


def merge(intervals: Iterable[Interval], join_seconds: float = 0.0) -> list[Interval]:
    """Sorted union; intervals at most ``join_seconds`` apart are joined."""
    join = timedelta(seconds=join_seconds)
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1] + join:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def clip(intervals: Iterable[Interval], lo: datetime, hi: datetime) -> list[Interval]:
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


def intersect(base: list[Interval], other: list[Interval]) -> list[Interval]:
    return subtract(base, subtract(base, other))


def total(intervals: Iterable[Interval]) -> float:
    return sum((e - s).total_seconds() for s, e in intervals)


def _transition_cause(piece: Interval, custody: list[Custody], agents: list[Custody], allowance: timedelta) -> Gap:
    """The cause of a hole ``piece`` at a custody transition: ``handover`` when the camera went from one agent to
    another agent that was already running, ``agent_offline`` otherwise."""
    start, end = piece
    # the custody that held the camera before the hole and ended in it, and the one that began in it
    before = [c for c in custody if c.start < start and c.end <= end + allowance]
    prior = max(before, key=lambda c: c.end, default=None)
    after = [c for c in custody if c.start >= start - allowance and c is not prior]
    following = min(after, key=lambda c: c.start, default=None)
    if prior is not None and following is not None and prior.agent != following.agent and any(
            c.agent == following.agent and c.start < prior.end for c in [*custody, *agents]):
        return Gap(start, end, GapCause.HANDOVER, f"lease moved from agent {prior.agent} to agent {following.agent}")
    parts = []
    if prior is not None and prior.end <= end + allowance:
        parts.append(f"agent {prior.agent} {'stopped' if prior.stopped else 'last heartbeat'} at "
                     f"{prior.end.isoformat()}")
    if following is not None:
        parts.append(f"agent {following.agent} started at {following.start.isoformat()}")
    return Gap(start, end, GapCause.AGENT_OFFLINE, "no agent held the camera: " + "; ".join(parts))


def explain_by_custody(piece: Interval, custody: list[Custody], agents: list[Custody], allowance_seconds: float,
                       tolerance_seconds: float) -> list[Gap]:
    """Split a hole no recorder event explains into what the custody rows say.

    Outside every custody, no agent held the camera: ``agent_offline`` (or ``handover``), but only next to a
    custody row (an agent that stopped, or that started after it); without any such row there is no evidence.
    Inside a custody, only the ``allowance_seconds`` around a custody start or end (an agent stopping, ffmpeg
    connecting) are explained by the transition; anything longer stays ``not_recorded``."""
    start, end = piece
    if not custody:
        return [Gap(start, end, GapCause.NOT_RECORDED)]
    allowance = timedelta(seconds=allowance_seconds)
    held = merge((c.start, c.end) for c in custody)
    explained = subtract([piece], held)  # outside every custody: the rows around it are the evidence
    for c in custody:
        for moment in (c.start, c.end):
            if start - allowance <= moment <= end + allowance:
                explained.append((moment - allowance, moment + allowance))
    explained = clip(merge(explained), start, end)
    gaps = [_transition_cause(p, custody, agents, allowance) for p in explained]
    gaps += [Gap(s, e, GapCause.NOT_RECORDED) for s, e in subtract([piece], explained)]
    return [g for g in sorted(gaps, key=lambda g: g.start) if g.seconds > tolerance_seconds]


def audit_point(
    *,
    camera: str,
    grid: str,
    tier: str,
    window: Interval,
    spans: list[Interval],
    ledger: list[Gap],
    min_lock_margin_seconds: float | None,
    custody: list[Custody] | None = None,
    agents: list[Custody] | None = None,
    floor_start: datetime | None = None,
    registered_at: datetime | None = None,
    complete_at: datetime | None = None,
    settle_seconds: float = 0.0,
    min_coverage: float | None = None,
    images: ImageAudit | None = None,
    locks_checked_at: datetime | None = None,
    tolerance_seconds: float = 1.0,
    transition_seconds: float = 30.0,
) -> PointAudit:
    """Audit one point over its required ``window`` (already starting at registration, ending at now - settle).

    ``spans``: intervals holding catalogued video. ``ledger``: gap rows (recorder outages with their cause, and
    losses found by the jobs). ``custody``: when which agent held the camera; ``agents``: when which agent ran."""
    lo, hi = window
    if hi <= lo:
        return PointAudit(camera, grid, tier, lo, max(lo, hi), 0.0, 0.0, [], min_lock_margin_seconds, floor_start,
                          registered_at, complete_at, settle_seconds, min_coverage, images, locks_checked_at)
    spans = clip(merge(spans, tolerance_seconds), lo, hi)
    gaps: list[Gap] = []
    holes = [h for h in subtract([(lo, hi)], spans) if (h[1] - h[0]).total_seconds() > tolerance_seconds]
    explained = sorted((g for g in ledger if g.cause in EXPLAINED), key=lambda g: g.start)
    unexplained: list[Interval] = []
    for hole_start, hole_end in holes:
        cursor = hole_start
        for gap in explained:
            start, end = max(gap.start, cursor), min(gap.end, hole_end)
            if end <= start:
                continue
            if start > cursor:
                unexplained.append((cursor, start))
            gaps.append(Gap(start, end, gap.cause, gap.detail))
            cursor = end
        if hole_end > cursor:
            unexplained.append((cursor, hole_end))
    for piece in unexplained:
        if (piece[1] - piece[0]).total_seconds() > tolerance_seconds:
            gaps += explain_by_custody(piece, custody or [], agents or [], transition_seconds, tolerance_seconds)
    losses = merge(clip([(g.start, g.end) for g in ledger if g.cause in LOSSES], lo, hi))
    for gap in ledger:
        if gap.cause in LOSSES:
            for start, end in clip([(gap.start, gap.end)], lo, hi):
                gaps.append(Gap(start, end, gap.cause, gap.detail))
    covered = total(subtract(spans, losses))
    gaps.sort(key=lambda g: (g.start, g.end))
    return PointAudit(camera, grid, tier, lo, hi, covered, (hi - lo).total_seconds(), gaps, min_lock_margin_seconds,
                      floor_start, registered_at, complete_at, settle_seconds, min_coverage, images, locks_checked_at)
