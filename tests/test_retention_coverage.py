"""The verdict rule on hand-made evidence: custody rows explain agent stops and handovers and nothing more,
sub-second joins are not gaps, explained outages lower coverage only, a per-tier minimum turns them into a
violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jifang.retention.coverage import Custody, Gap, audit_point

from jifang.domain import GapCause

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
S = timedelta(seconds=1)


def run(spans, ledger=(), custody=(), agents=(), **extra):  # type: ignore[no-untyped-def]
    return audit_point(camera="c", grid="g", tier="key", window=(T0, T0 + 600 * S), spans=list(spans),
                       ledger=list(ledger), custody=list(custody), agents=list(agents), min_lock_margin_seconds=0.0,
                       **extra)


def test_sub_second_joins_are_not_gaps() -> None:
    spans = [(T0 + i * 10 * S + (0.4 * S if i else 0 * S), T0 + (i + 1) * 10 * S) for i in range(60)]
    audit = run(spans)
    assert audit.gaps == [] and audit.coverage == 1.0 and audit.compliant


def test_an_agent_restart_is_agent_offline_from_its_custody_rows() -> None:
    spans = [(T0, T0 + 200 * S), (T0 + 230 * S, T0 + 600 * S)]
    custody = [Custody("edge:1", T0 - 60 * S, T0 + 201 * S, True), Custody("edge:2", T0 + 226 * S, T0 + 600 * S, False)]
    audit = run(spans, custody=custody)
    assert [(g.start, g.end, g.cause) for g in audit.gaps] == [(T0 + 200 * S, T0 + 230 * S, GapCause.AGENT_OFFLINE)]
    assert "edge:1 stopped" in audit.gaps[0].detail and "edge:2 started" in audit.gaps[0].detail
    assert audit.compliant and audit.coverage == (570 / 600)


def test_a_lease_moving_to_a_running_agent_is_a_handover() -> None:
    spans = [(T0, T0 + 300 * S), (T0 + 312 * S, T0 + 600 * S)]
    custody = [Custody("edge-a", T0 - 60 * S, T0 + 305 * S, False),  # killed: its heartbeats ended
               Custody("edge-b", T0 + 309 * S, T0 + 600 * S, False)]
    agents = [Custody("edge-b", T0 - 3600 * S, T0 + 600 * S, False)]
    [gap] = run(spans, custody=custody, agents=agents).gaps
    assert gap.cause == GapCause.HANDOVER and gap.detail == "lease moved from agent edge-a to agent edge-b"


def test_a_long_hole_inside_a_custody_stays_unexplained() -> None:
    """The agent held the camera and restarted once, but recorded nothing for 5 minutes before: only the 30 s
    around the restart are explained."""
    spans = [(T0, T0 + 100 * S), (T0 + 420 * S, T0 + 600 * S)]
    custody = [Custody("edge:1", T0 - 60 * S, T0 + 400 * S, True), Custody("edge:2", T0 + 405 * S, T0 + 600 * S, False)]
    audit = run(spans, custody=custody)
    assert [(g.start, g.end, g.cause) for g in audit.gaps] == [
        (T0 + 100 * S, T0 + 370 * S, GapCause.NOT_RECORDED), (T0 + 370 * S, T0 + 420 * S, GapCause.AGENT_OFFLINE)]
    assert not audit.compliant and [f.code for f in audit.findings] == ["gap:not_recorded"]


def test_without_custody_evidence_a_hole_is_not_recorded() -> None:
    audit = run([(T0, T0 + 200 * S), (T0 + 230 * S, T0 + 600 * S)],
                ledger=[Gap(T0 + 200 * S, T0 + 230 * S, GapCause.NOT_RECORDED, "no recorder was running")])
    assert [g.cause for g in audit.gaps] == [GapCause.NOT_RECORDED] and not audit.compliant


def test_explained_outages_lower_coverage_and_a_minimum_makes_them_a_violation() -> None:
    spans = [(T0, T0 + 300 * S), (T0 + 360 * S, T0 + 600 * S)]
    outage = Gap(T0 + 300 * S, T0 + 360 * S, GapCause.CAMERA_OFFLINE, "rtsp timeout")
    relaxed = run(spans, ledger=[outage])
    assert relaxed.compliant and relaxed.coverage == 0.9 and relaxed.gaps == [outage]
    strict = run(spans, ledger=[outage], min_coverage=0.95)
    assert not strict.compliant
    assert [(f.code, f.detail) for f in strict.findings] == [("min_coverage", "90.00% < 95.00%")]
