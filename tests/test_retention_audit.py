"""Acceptance: 100 days of simulated history for three points (one per tier), with an outage, a lost upload
and a deleted object, under a clock the test controls: exactly the expected gaps, causes and verdicts, in
all four report formats."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from jifang.retention.report import render
from jifang.retention.service import RetentionService

from jifang.db import Catalog
from jifang.db.models import Sighting
from jifang.domain import GapCause, ObjectMeta, utc_stamp
from jifang.store import FilesystemStore
from jifang.tiers import MediaKind, Tier, retain_until

from .retention_history import GRID, Clock, History, settings_for

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY, IMPORTANT, GENERAL = "33100200001320000001", "33100200001320000002", "33100200001320000003"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
START = NOW - 100 * DAY
OUTAGE = (NOW - 20 * DAY - 2 * HOUR, NOW - 20 * DAY + 2 * HOUR)  # key point: camera offline, explained
DELETED_AT = NOW - 5 * DAY  # important point: an object removed behind jifang's back
LOST_AT = NOW - 3 * DAY  # general point: recorded, never uploaded
G_REGISTERED = NOW - 10 * DAY
SETTLE = timedelta(seconds=20)  # segment_seconds 10 + max(10, 10): the segment being recorded and its cataloguing
END = NOW - SETTLE


CAMERAS = [
    {"id": KEY, "tier": "key", "registered_at": START.isoformat()},
    {"id": IMPORTANT, "tier": "important", "registered_at": START.isoformat()},
    {"id": GENERAL, "tier": "general", "registered_at": G_REGISTERED.isoformat()},
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded history, built once; each test works on its own copy."""
    root = tmp_path_factory.mktemp("history")
    clock = Clock(NOW)
    settings = settings_for(root, CAMERAS)
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    store = FilesystemStore(settings.storage.path, clock=clock)
    store.ensure_ready()
    work = root / "work"
    work.mkdir()
    h = History(catalog, store, work)
    outage_hours = {OUTAGE[0] + i * HOUR for i in range(4)}
    h.record_range(KEY, "key", START, NOW, skip=outage_hours)
    catalog.add_gap(KEY, OUTAGE[0], OUTAGE[1], GapCause.CAMERA_OFFLINE, "camera unreachable")
    deleted = next(s for s in h.record_range(IMPORTANT, "important", START, NOW) if s.capture_start == DELETED_AT)
    h.record_range(GENERAL, "general", G_REGISTERED, LOST_AT)
    h.record(GENERAL, "general", LOST_AT, 3600, upload=False)
    h.record_range(GENERAL, "general", LOST_AT + HOUR, NOW)
    # remove the object the way a broken disk or an operator would: behind the store's back
    (settings.storage.path / "jifang-video" / deleted.key).unlink()
    # images: three snapshots at the key point locked a day short of the image floor (one under legal hold), and
    # a plate crop at the important point that is catalogued but gone from the store long before its floor
    (work / "snapshot.jpg").write_bytes(b"jpeg")
    for day in (1, 2, 3):
        at = NOW - day * DAY
        image = f"images/{KEY}/{at:%Y/%m/%d}/{utc_stamp(at)}-snapshot.jpg"
        meta = ObjectMeta(KEY, GRID, Tier.KEY, at, at, hashlib.sha256(b"jpeg").hexdigest())
        store.put(MediaKind.IMAGE, image, work / "snapshot.jpg", meta,
                  retain_until(at, "key", MediaKind.IMAGE) - DAY)
        if day == 1:
            store.set_legal_hold(MediaKind.IMAGE, image, True)
    with catalog.session() as session:
        session.add(Sighting(kind="plate", camera_id=IMPORTANT, seen_at=NOW - 2 * DAY, text="浙J12345",
                             crop_key=f"images/{IMPORTANT}/gone-plate-crop.jpg",
                             retain_until=retain_until(NOW - 2 * DAY, "important", MediaKind.IMAGE)))
        session.commit()
    catalog.dispose()
    return root


@pytest.fixture
def history(recorded: Path, tmp_path: Path) -> tuple[RetentionService, Clock]:
    shutil.copytree(recorded, tmp_path / "site")
    clock = Clock(NOW)
    settings = settings_for(tmp_path / "site", CAMERAS)
    catalog = Catalog(settings.database.url)
    store = FilesystemStore(settings.storage.path, clock=clock)
    service = RetentionService(settings, catalog, store, clock)
    result = service.enforce()
    assert (result.missing, result.upload_failed, result.deleted, result.short) == (1, 1, 0, 0)
    assert result.verified == 2400 + 2400 + 239 - 4
    assert (result.images_verified, result.images_extended) == (3, 3)
    yield service, clock
    catalog.dispose()


def by_camera(audits):  # type: ignore[no-untyped-def]
    return {a.camera: a for a in audits}


def test_exact_gaps_causes_and_verdicts(history) -> None:  # type: ignore[no-untyped-def]
    service, _clock = history
    audits = by_camera(service.audit())

    key = audits[KEY]
    assert [(g.start, g.end, g.cause, g.violation) for g in key.gaps] == [
        (OUTAGE[0], OUTAGE[1], GapCause.CAMERA_OFFLINE, False)]
    # three months back in China time (27 August 20:00 +08:00), the settle before now
    assert (key.window_start, key.window_end) == (datetime(2026, 8, 27, 12, tzinfo=UTC), END)
    assert key.covered_seconds == (END - key.window_start).total_seconds() - 4 * 3600
    assert key.min_lock_margin_seconds == 0
    assert key.compliant and key.findings == [] and key.complete_at is None
    # its images: read back, extended to the image floor, one held
    assert key.images is not None
    assert (key.images.objects, key.images.min_lock_margin_seconds, key.images.held,
            key.images.deleted_before_floor) == (3, 0, 1, 0)

    important = audits[IMPORTANT]
    assert important.window_start == datetime(2026, 10, 27, 12, tzinfo=UTC)
    assert [(g.start, g.end, g.cause, g.violation) for g in important.gaps] == [
        (DELETED_AT, DELETED_AT + HOUR, GapCause.OBJECT_MISSING, True)]
    assert important.covered_seconds == 31 * 86400 - 20 - 3600
    assert not important.compliant
    assert [f.code for f in important.findings] == ["gap:object_missing", "image_deleted_before_floor"]
    assert important.images is not None and important.images.deleted_before_floor == 1

    general = audits[GENERAL]
    # registered 10 days ago: the window starts there (before it: not applicable, not in the denominator)
    assert general.floor_start == datetime(2026, 10, 28, 12, tzinfo=UTC)
    assert general.window_start == G_REGISTERED
    assert general.complete_at == G_REGISTERED + 30 * DAY
    assert [(g.start, g.end, g.cause, g.violation) for g in general.gaps] == [
        (LOST_AT, LOST_AT + HOUR, GapCause.UPLOAD_FAILED, True),
    ]
    assert general.required_seconds == 10 * 86400 - 20
    assert general.coverage == pytest.approx((10 * 86400 - 20 - 3600) / (10 * 86400 - 20))
    assert not general.compliant


def test_a_per_tier_minimum_coverage_turns_explained_outages_into_a_violation(history) -> None:  # type: ignore[no-untyped-def]
    service, _clock = history
    retention = service.settings.retention.model_copy(update={"min_coverage": service.settings.retention.min_coverage
                                                              .model_copy(update={"key": 0.999})})
    service.settings = service.settings.model_copy(update={"retention": retention})
    key = by_camera(service.audit())[KEY]
    assert key.coverage == pytest.approx(1 - 4 * 3600 / (END - key.window_start).total_seconds())
    assert [f.code for f in key.findings] == ["min_coverage"] and not key.compliant


def test_reconciliation_finds_the_same_missing_object_once(history) -> None:  # type: ignore[no-untyped-def]
    service, _clock = history
    result = service.reconcile(days=10)
    assert len(result.missing_in_store) == 1 and result.missing_in_store[0].startswith(f"video/{IMPORTANT}/")
    assert result.missing_in_catalog == []
    assert len([g for g in service.catalog.gaps(IMPORTANT) if g.cause == "object_missing"]) == 1


def test_four_formats_agree(history) -> None:  # type: ignore[no-untyped-def]
    service, _clock = history
    audits = service.audit()
    data = json.loads(render(audits, "json", NOW, service.settings))
    assert data["generated_at"] == "2026-11-27T20:00:00+08:00"  # the site's local time, with its offset
    points = {p["camera"]: p for p in data["points"]}
    assert points[KEY]["gaps"] == [{"start": "2026-11-07T18:00:00+08:00", "end": "2026-11-07T22:00:00+08:00",
                                    "seconds": 14400.0, "cause": "camera_offline",
                                    "cause_label": "摄像机离线 (camera offline)", "detail": "camera unreachable",
                                    "violation": False}]
    assert points[KEY]["gaps_by_cause"] == {"camera_offline": 14400.0}
    assert points[KEY]["verdict"] == "compliant" and points[GENERAL]["verdict"] == "non_compliant"
    assert points[GENERAL]["window_complete_at"] == "2026-12-17T20:00:00+08:00"
    assert [p["compliant"] for p in data["points"]] == [True, False, False]
    assert data["summary"]["compliant"] == 1 and data["summary"]["by_tier"]["key"]["compliant"] == 1
    # the digest is of the content: recomputed from the document, and changed by any edit
    from jifang.retention.report import digest

    assert len(data["sha256"]) == 64 and digest(data) == data["sha256"]
    data["points"][0]["coverage"] = 1.0
    assert digest(data) != data["sha256"]

    rows = list(csv.DictReader(io.StringIO(render(audits, "csv", NOW, service.settings))))
    assert [(r["camera"], r["gap_cause"], r["compliant"]) for r in rows] == [
        (KEY, "camera_offline", "True"), (IMPORTANT, "object_missing", "False"),
        (GENERAL, "upload_failed", "False")]

    table = render(audits, "table", NOW, service.settings)
    assert "1/3 points compliant" in table
    assert table.count("NON-COMPLIANT") == 2

    page = render(audits, "html", NOW, service.settings)
    assert page.count("<svg class=\"timeline\"") == 3
    assert "审核人" in page and "网格长" in page and "示范网格" in page and "Auditor" not in page
    assert page.count("class='violation'") == 2
    assert data["sha256"] in page and "2026-11-07 18:00:00 (UTC+08:00)" in page and "4:00:00" in page
    english = render(audits, "html", NOW, service.settings, "en")
    assert "Auditor" in english and "Grid head" in english and "审核人" not in english
    assert english.count("NON-COMPLIANT") == 2 and "camera offline" in english and data["sha256"] in english


def test_cli_audit_exit_codes_and_formats(history, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, _clock = history
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump(service.settings.model_dump(mode="json", exclude_none=True), allow_unicode=True))

    def audit(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "jifang.cli", "retention", "audit", "--config", str(config),
                               "--at", NOW.isoformat(), *extra], capture_output=True, text=True, cwd=REPO,
                              timeout=120)

    everything = audit("--format", "json")
    assert everything.returncode == 1, everything.stderr
    assert json.loads(everything.stdout) == json.loads(render(service.audit(), "json", NOW, service.settings))
    only_key = audit("--camera", KEY)
    assert only_key.returncode == 0 and "1/1 points compliant" in only_key.stdout
    report = tmp_path / "report.html"
    assert audit("--format", "html", "--output", str(report)).returncode == 1
    assert report.read_text().startswith("<!doctype html>") and "视频图像保存合规审计报告" in report.read_text()
    assert audit("--format", "html", "--lang", "en", "--output", str(report)).returncode == 1
    assert "Retention compliance report" in report.read_text() and "审核人" not in report.read_text()
    bad = audit("--camera", "33100200001320009999")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "jifang: error: camera 33100200001320009999 is not in the configuration")
    assert audit("--at", "yesterday").returncode == 2


def test_raising_a_tier_extends_existing_locks(history) -> None:  # type: ignore[no-untyped-def]
    service, clock = history
    cameras = [c.model_copy(update={"tier": "key"}) if c.id == IMPORTANT else c for c in service.settings.cameras]
    service.settings = service.settings.model_copy(update={"cameras": cameras})
    clock.now = NOW + HOUR
    result = service.enforce()
    assert result.extended == 2400 - 1  # every stored object of the point (one is missing)
    for row in service.catalog.segments(IMPORTANT):
        stored = service.store.stat(MediaKind.VIDEO, row.key)
        if stored is not None:
            from jifang.tiers import retain_until

            assert stored.retain_until >= retain_until(row.end_at, "key", MediaKind.VIDEO)


def test_lowering_a_tier_never_shortens_a_lock(history) -> None:  # type: ignore[no-untyped-def]
    service, clock = history
    before = {row.key: service.store.stat(MediaKind.VIDEO, row.key).retain_until
              for row in service.catalog.segments(KEY)}
    cameras = [c.model_copy(update={"tier": "general"}) if c.id == KEY else c for c in service.settings.cameras]
    service.settings = service.settings.model_copy(update={"cameras": cameras})
    calls: list[str] = []
    original = service.store._set_retention
    service.store._set_retention = lambda kind, key, until: calls.append(key) or original(kind, key, until)
    clock.now = NOW + HOUR
    service.enforce()
    assert calls == []
    after = {key: service.store.stat(MediaKind.VIDEO, key).retain_until for key in before}
    assert after == before


def test_metrics_and_job_runs(history) -> None:  # type: ignore[no-untyped-def]
    from jifang.retention.metrics import RetentionMetrics
    from jifang.retention.scheduler import Scheduler

    service, clock = history
    metrics = RetentionMetrics()
    scheduler = Scheduler(service, metrics, clock=clock)
    for job in ("enforce", "audit"):
        scheduler.run_job(job)
    value = metrics.metrics_registry.get_sample_value
    assert value("jifang_retention_compliant", {"camera": KEY, "tier": "key"}) == 1
    assert value("jifang_retention_compliant", {"camera": IMPORTANT, "tier": "important"}) == 0
    assert value("jifang_retention_gap_seconds", {"camera": KEY, "cause": "camera_offline"}) == 4 * 3600
    assert value("jifang_retention_coverage_ratio", {"camera": GENERAL}) == pytest.approx(239 / 240)
    assert value("jifang_retention_min_lock_margin_seconds", {"camera": KEY}) == 0
    assert value("jifang_retention_job_last_success_timestamp", {"job": "enforce"}) == NOW.timestamp()
    runs = {run.job: run for run in service.ledger.job_runs()}
    assert runs["enforce"].last_success == NOW and runs["audit"].last_error == ""


def test_forecast_from_measured_bitrates(history, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jifang.retention.forecast import by_tier, forecast

    service, _clock = history
    points = {p.camera: p for p in forecast(service.settings, service.ledger, NOW, store=service.store)}
    key = points[KEY]
    bytes_per_hour = len(f"{KEY}-{NOW.isoformat()}")  # our tiny test "video" holds its own name
    assert key.bitrate_bps == pytest.approx(8 * bytes_per_hour / 3600)
    assert key.floor_seconds == (NOW - datetime(2026, 8, 27, 12, tzinfo=UTC)).total_seconds()
    # images: 3 x 4 bytes in the 7 sample days, kept for 12 calendar months (365 days back from NOW)
    assert key.image_floor_seconds == 365 * 86400
    assert key.image_bytes_needed == pytest.approx(12 / 7 * 365)
    assert points[IMPORTANT].image_bytes_needed == 0
    assert by_tier(list(points.values()))["key"] == pytest.approx(key.bytes_needed + key.image_bytes_needed)


def test_cli_enforce_hold_release_forecast(history, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, _clock = history
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump(service.settings.model_dump(mode="json", exclude_none=True), allow_unicode=True))

    def jifang(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "jifang.cli", "retention", *args, "--config", str(config)],
                              capture_output=True, text=True, cwd=REPO, timeout=120)

    enforce = jifang("enforce", "--once", "--json")
    assert enforce.returncode == 0, enforce.stderr
    assert json.loads(enforce.stdout)["enforce"]["deleted"] == 0
    assert jifang("enforce").returncode == 2  # a single pass must be asked for explicitly

    hold = jifang("hold", "--camera", KEY, "--from", "2026-11-20T08:00:00+08:00", "--to", "2026-11-20T10:00:00+08:00",
                  "--reason", "涉稳事件 evidence", "--actor", "supervisor1")
    assert hold.returncode == 0, hold.stderr
    held = [row for row in service.catalog.segments(KEY) if row.held]
    assert [(r.start_at.hour, r.end_at.hour) for r in held] == [(0, 1), (1, 2)]  # 08:00-10:00 +08:00 in UTC
    assert all(service.store.stat(MediaKind.VIDEO, r.key).legal_hold for r in held)
    listed = json.loads(jifang("holds", "--json").stdout)
    assert [(h["camera"], h["reason"]) for h in listed] == [(KEY, "涉稳事件 evidence")]
    backwards = jifang("hold", "--camera", KEY, "--from", "2026-11-20", "--to", "2026-11-19", "--reason", "x")
    assert backwards.returncode == 2 and "--to must be after --from" in backwards.stderr
    release = jifang("release", str(listed[0]["id"]), "--actor", "supervisor1")
    assert release.returncode == 0, release.stderr
    assert not any(service.store.stat(MediaKind.VIDEO, r.key).legal_hold for r in held)
    assert jifang("release", str(listed[0]["id"])).returncode == 2  # already released

    tight = jifang("forecast", "--capacity", "1000")
    assert tight.returncode == 1 and "warning: the floors need" in tight.stderr
    roomy = jifang("forecast", "--capacity", str(10**12), "--json")
    assert roomy.returncode == 0 and set(json.loads(roomy.stdout)["by_tier_bytes"]) == {"key", "important", "general"}


def test_the_printed_report_renders_in_chromium(history) -> None:  # type: ignore[no-untyped-def]
    """The report as an auditor opens it (headless Chromium, print media): no raw enum, no UTC-only time, every
    timeline drawn; screenshot in tests/artifacts/retention-report.png."""
    import re

    from playwright.sync_api import sync_playwright

    service, _clock = history
    page_html = render(service.audit(), "html", NOW, service.settings)
    artifacts = REPO / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "retention-report.html").write_text(page_html, encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_content(page_html)
            page.emulate_media(media="print")
            page.screenshot(path=str(artifacts / "retention-report.png"), full_page=True)
            text = page.inner_text("body")
            bars = page.eval_on_selector_all("svg.timeline", "els => els.map(e => e.getBoundingClientRect().width)")
            gap_bars = page.eval_on_selector_all("svg.timeline rect", "els => els.length")
        finally:
            browser.close()
    # raw enum values (the JSON's): causes, verdicts, tiers as codes; "handover" is also plain English
    for raw in [*(str(c) for c in GapCause if "_" in str(c)), "non_compliant", "compliant_so_far", "tier: key"]:
        assert raw not in text, raw
    assert not re.search(r"\d{2}:\d{2}(:\d{2})?Z\b", text), "a UTC-only time"
    assert "(UTC+08:00)" in text and "审核人" in text and "摄像机离线" in text
    assert bars == [720, 720, 720] and gap_bars == 3 + 3  # each window bar, plus one bar per gap (one each)
    assert "4:00:00" in text and "(0.0 h)" not in text


def test_months_follow_the_site_time_zone_across_dst(tmp_path: Path) -> None:
    """A site in Berlin: the key point's window is three local calendar months back, across the spring DST change
    (29 March 02:30 does not exist: the earlier reading, so the window is not shorter), and enforce extends locks
    written with China-time months to Berlin's local midnight."""
    now = datetime(2026, 6, 29, 0, 30, tzinfo=UTC)  # 02:30 CEST
    settings = settings_for(tmp_path, [{"id": KEY, "tier": "key", "registered_at": "2026-01-01T00:00:00+01:00"}])
    settings = settings.model_copy(update={"timezone": "Europe/Berlin"})
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    clock = Clock(now)
    store = FilesystemStore(settings.storage.path, clock=clock)
    store.ensure_ready()
    (tmp_path / "work").mkdir()
    h = History(catalog, store, tmp_path / "work")
    # the history starts 4 months back; the segment ending at 22:30 UTC ends at 06:30 China time the next day
    h.record_range(KEY, "key", now - 122 * DAY, now - timedelta(seconds=20))
    service = RetentionService(settings, catalog, store, clock)
    service.enforce()
    [point] = service.audit()
    assert point.window_start == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, just before the change
    assert point.compliant and point.gaps == [] and point.min_lock_margin_seconds is not None
    sample = next(r for r in catalog.segments(KEY) if r.end_at == datetime(2026, 6, 20, 22, 30, tzinfo=UTC))
    stored = store.stat(MediaKind.VIDEO, sample.key)
    assert stored.retain_until == datetime(2026, 9, 22, tzinfo=ZoneInfo("Europe/Berlin"))
    assert stored.retain_until == retain_until(sample.end_at, "key", MediaKind.VIDEO, "Europe/Berlin")
    catalog.dispose()


def test_forecast_requires_capacity_for_an_object_store(tmp_path: Path) -> None:
    """The help says --capacity is required for MinIO: it is, before anything is connected."""
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'j.db'}"},
        "storage": {"kind": "minio", "minio": {"endpoint": "127.0.0.1:9", "secure": False}},
        "grids": [{"code": GRID, "name": "g"}], "cameras": []}))
    done = subprocess.run([sys.executable, "-m", "jifang.cli", "retention", "forecast", "--config", str(config)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == (
        "jifang: error: --capacity is required with minio storage (jifang cannot read the capacity of an object "
        "store)")
