"""Retention at county scale, measured on this machine (run on demand; prints numbers).

    .venv/bin/python bench/retention_bench.py [--cameras 1000] [--days 90] [--segments 2000]
                                              [--objects 10000] [--pg postgresql+psycopg2://...]

1. Audit of N cameras x D days from the coverage rollups, gap ledger and custody rows (never scanning segments;
   a constant number of queries, grouped in memory; the count is printed). Target: 10,000 cameras x 90 days in
   under 2 s on SQLite and on PostgreSQL (``--cameras 10000 --audit-only``).
2. Catalog insert + rollup update per segment (SQLite, and PostgreSQL with --pg). Target: under 5 ms.
3. Reconciliation (catalog versus store listing per camera and day) per 10,000 objects against the S3 test
   server (moto) on loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy  # noqa: E402
from jifang.retention.service import RetentionService  # noqa: E402

from jifang.config import parse_settings  # noqa: E402
from jifang.db import Catalog  # noqa: E402
from jifang.db.models import CoverageSpan, GapRow  # noqa: E402
from jifang.domain import Segment, video_key  # noqa: E402
from jifang.store import FilesystemStore  # noqa: E402
from jifang.tiers import MediaKind, Tier, retain_until  # noqa: E402

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
GRID = "331002001001001"
TIERS = ["key"] * 10 + ["important"] * 40 + ["general"] * 50


def camera_id(i: int) -> str:
    return f"331002000013200{i:05d}"


def settings_for(url: str, store: Path, cameras: int, days: int):  # type: ignore[no-untyped-def]
    return parse_settings({
        "version": 1, "database": {"url": url}, "storage": {"kind": "filesystem", "path": str(store)},
        "grids": [{"code": GRID, "name": "bench"}],
        "cameras": [{"id": camera_id(i), "name": f"c{i}", "grid": GRID, "tier": TIERS[i % 100],
                     "rtsp_url": "rtsp://127.0.0.1/x", "registered_at": (NOW - timedelta(days=days)).isoformat()}
                    for i in range(cameras)],
    }, "bench", environ={})


def bench_audit(url: str, work: Path, cameras: int, days: int) -> None:
    settings = settings_for(url, work / "store", cameras, days)
    catalog = Catalog(url)
    catalog.migrate()
    rng = random.Random(7)
    start = NOW - timedelta(days=days)
    with catalog.session() as session:
        for i in range(cameras):
            cursor = start
            for _outage in range(rng.randint(0, 8)):  # a few outages per camera over the period
                down = cursor + timedelta(hours=rng.randint(24, 240))
                if down >= NOW:
                    break
                up = down + timedelta(minutes=rng.randint(1, 120))
                session.add(CoverageSpan(camera_id=camera_id(i), start_at=cursor, end_at=down, segments=1, bytes=1))
                session.add(GapRow(camera_id=camera_id(i), start_at=down, end_at=up, cause="camera_offline",
                                   detail=""))
                cursor = up
            session.add(CoverageSpan(camera_id=camera_id(i), start_at=cursor, end_at=NOW, segments=1, bytes=1))
        session.commit()
    service = RetentionService(settings, catalog, FilesystemStore(work / "store"), lambda: NOW)
    queries = [0]
    sqlalchemy.event.listen(catalog.engine, "before_cursor_execute", lambda *_: queries.__setitem__(0, queries[0] + 1))
    t0 = time.perf_counter()
    audits = service.audit(at=NOW)
    elapsed = time.perf_counter() - t0
    compliant = sum(a.compliant for a in audits)
    print(f"audit: {cameras} cameras x {days} days on {catalog.engine.dialect.name}: {elapsed:.2f} s "
          f"({1000 * elapsed / cameras:.3f} ms per point; {queries[0]} queries; {compliant} compliant)", flush=True)
    catalog.dispose()


def bench_inserts(url: str, count: int) -> None:
    catalog = Catalog(url)
    catalog.migrate()
    t0 = time.perf_counter()
    for i in range(count):
        start = NOW + timedelta(seconds=10 * i)
        end = start + timedelta(seconds=10)
        catalog.add_segment(Segment(camera_id(1), video_key(camera_id(1), start), start, end, 5_000_000,
                                    hashlib.sha256(str(i).encode()).hexdigest(), Tier.KEY, GRID,
                                    retain_until(end, Tier.KEY, MediaKind.VIDEO)), recorded_at=end)
    elapsed = time.perf_counter() - t0
    print(f"catalog insert + rollup on {catalog.engine.dialect.name}: {1000 * elapsed / count:.2f} ms per segment "
          f"({count} segments)")
    catalog.dispose()


def bench_reconcile(work: Path, objects: int) -> None:
    from bench.s3 import start_s3

    server, _endpoint, store = start_s3()
    url = f"sqlite:///{work / 'reconcile.db'}"
    settings = parse_settings({
        "version": 1, "database": {"url": url}, "grids": [{"code": GRID, "name": "b"}],
        "cameras": [{"id": camera_id(1), "name": "c", "grid": GRID, "tier": "key", "rtsp_url": "rtsp://h/x"}],
    }, "bench", environ={})
    catalog = Catalog(url)
    catalog.migrate()
    payload = work / "obj"
    payload.write_bytes(b"x")
    sha = hashlib.sha256(b"x").hexdigest()
    first = NOW - timedelta(seconds=10 * objects)
    t0 = time.perf_counter()
    for i in range(objects):
        start = first + timedelta(seconds=10 * i)
        end = start + timedelta(seconds=10)
        segment = Segment(camera_id(1), video_key(camera_id(1), start), start, end, 1, sha, Tier.KEY, GRID,
                          retain_until(end, Tier.KEY, MediaKind.VIDEO))
        catalog.add_segment(segment, recorded_at=end)
        store._write(MediaKind.VIDEO, segment.key, payload, segment.meta(), segment.retain_until)
        catalog.mark_uploaded(segment.key, end)
    setup = time.perf_counter() - t0
    service = RetentionService(settings, catalog, store, lambda: NOW)
    days = int((NOW - first).total_seconds() // 86400) + 1
    t0 = time.perf_counter()
    result = service.reconcile(days=days)
    elapsed = time.perf_counter() - t0
    server.stop()
    assert not result.missing_in_store and not result.missing_in_catalog
    print(f"reconcile: {result.objects} objects over {result.checked_days} camera-days against the S3 test server: "
          f"{elapsed:.2f} s ({elapsed * 10_000 / max(result.objects, 1):.1f} s per 10,000 objects; "
          f"loading them took {setup:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--segments", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--pg", help="also measure on this PostgreSQL URL (tables are created in a fresh schema)")
    parser.add_argument("--audit-only", action="store_true", help="only the audit benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jifang-bench-") as tmp:
        work = Path(tmp)
        bench_audit(f"sqlite:///{work / 'audit.db'}", work, args.cameras, args.days)
        if not args.audit_only:
            bench_inserts(f"sqlite:///{work / 'inserts.db'}", args.segments)
        if args.pg:
            schema = f"bench_{int(time.time())}"
            engine = sqlalchemy.create_engine(args.pg)
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
            url = f"{args.pg}?options=-csearch_path%3D{schema}"
            try:
                bench_audit(url, work, args.cameras, args.days)
                if not args.audit_only:
                    bench_inserts(url, args.segments)
            finally:
                with engine.begin() as conn:
                    conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        if not args.audit_only:
            bench_reconcile(work, args.objects)


if __name__ == "__main__":
    main()
