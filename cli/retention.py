"""``jifang retention ...``: enforce and prove the retention floors."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from jifang.cli.common import EXIT_FINDING, EXIT_OK, moment, open_catalog, with_config
from jifang.retention.forecast import by_tier, forecast
from jifang.retention.metrics import RetentionMetrics
from jifang.retention.report import render
from jifang.retention.service import RetentionService
from prometheus_client import start_http_server

from jifang.config import load_settings
from jifang.errors import ConfigError, JifangError
from jifang.registry import open_registry
from jifang.store import connect_store
from jifang.supervision import stop_on_signals


def _retention(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    settings, catalog = open_catalog(args.config)
    settings, _passwords = open_registry(settings, catalog).merge_into(settings, with_passwords=False)
    store = connect_store(settings)
    return RetentionService(settings, catalog, store, lambda: datetime.now(UTC))


def cmd_retention_audit(args: argparse.Namespace) -> int:
    service = _retention(args)
    at = moment(args.at) if args.at else datetime.now(UTC)
    audits = service.audit(at=at, grid=args.grid, camera=args.camera)
    text = render(audits, args.format, at, service.settings, args.lang)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"report written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK if all(a.compliant for a in audits) else EXIT_FINDING


def cmd_retention_enforce(args: argparse.Namespace) -> int:
    if not args.once:
        raise JifangError("enforce runs one pass with --once; use 'jifang retention run' for the scheduled service")
    service = _retention(args)
    result = service.enforce()
    reconcile = service.reconcile(days=args.reconcile_days) if args.reconcile_days is not None else None
    data = {"enforce": result.__dict__}
    if reconcile is not None:
        data["reconcile"] = {"checked_days": reconcile.checked_days, "objects": reconcile.objects,
                             "missing_in_store": reconcile.missing_in_store,
                             "missing_in_catalog": reconcile.missing_in_catalog}
    print(json.dumps(data, indent=2) if args.json else
          " ".join(f"{k}={v}" for k, v in result.__dict__.items()))
    return EXIT_OK


def cmd_retention_hold(args: argparse.Namespace) -> int:
    service = _retention(args)
    hold = service.hold(args.camera, moment(args.start), moment(args.end), args.reason, args.actor)
    print(f"legal hold {hold.id} placed on camera {hold.camera_id} "
          f"{hold.start_at.isoformat()} .. {hold.end_at.isoformat()}")
    return EXIT_OK


def cmd_retention_release(args: argparse.Namespace) -> int:
    service = _retention(args)
    hold = service.release(args.hold_id, args.actor)
    print(f"legal hold {hold.id} on camera {hold.camera_id} released")
    return EXIT_OK


def cmd_retention_holds(args: argparse.Namespace) -> int:
    service = _retention(args)
    rows = [{"id": h.id, "camera": h.camera_id, "from": h.start_at.isoformat(), "to": h.end_at.isoformat(),
             "reason": h.reason, "by": h.created_by} for h in service.ledger.active_holds(args.camera)]
    print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json else
          "\n".join(f"{r['id']}\t{r['camera']}\t{r['from']}\t{r['to']}\t{r['by']}\t{r['reason']}" for r in rows))
    return EXIT_OK


def cmd_retention_forecast(args: argparse.Namespace) -> int:
    kind = load_settings(args.config).storage.kind  # before connecting: a missing flag is the first thing to say
    if args.capacity is None and kind != "filesystem":
        raise ConfigError(f"--capacity is required with {kind} storage (jifang cannot read the capacity of an "
                          "object store)")
    service = _retention(args)
    capacity = args.capacity
    if capacity is None:
        capacity = shutil.disk_usage(service.settings.storage.path).total
    points = forecast(service.settings, service.ledger, datetime.now(UTC), store=service.store)
    totals = by_tier(points)
    needed = sum(totals.values())
    gib = 1024**3
    if args.json:
        print(json.dumps({"points": [{**p.__dict__, "total_bytes": p.total_bytes} for p in points],
                          "by_tier_bytes": totals, "needed_bytes": needed, "capacity_bytes": capacity}, indent=2))
    else:
        for p in points:
            rate = f"{p.bitrate_bps / 1000:.0f} kbit/s" if p.bitrate_bps else "no data (4 Mbit/s assumed)"
            print(f"{p.camera}\t{p.tier}\tvideo {rate} x {p.floor_seconds / 86400:.0f} d = "
                  f"{p.bytes_needed / gib:.1f} GiB"
                  f"\timages {p.image_bytes_per_day / 1024**2:.1f} MiB/d x {p.image_floor_seconds / 86400:.0f} d = "
                  f"{p.image_bytes_needed / gib:.1f} GiB")
        for tier, total in sorted(totals.items()):
            print(f"tier {tier}: {total / gib:.1f} GiB")
        print(f"needed {needed / gib:.1f} GiB of {capacity / gib:.1f} GiB capacity")
    if needed > capacity:
        print(f"warning: the floors need {needed / gib:.1f} GiB but the store has {capacity / gib:.1f} GiB",
              file=sys.stderr)
        return EXIT_FINDING
    return EXIT_OK


def cmd_retention_run(args: argparse.Namespace) -> int:
    from jifang.retention.scheduler import Scheduler  # deferred: APScheduler loads only for the long-running job

    service = _retention(args)
    metrics = RetentionMetrics()
    if args.metrics_port is not None:
        server, _thread = start_http_server(args.metrics_port, addr=args.metrics_host,
                                            registry=metrics.metrics_registry)
        print(f"metrics: http://{args.metrics_host}:{server.server_port}/metrics", flush=True)
    scheduler = Scheduler(service, metrics)
    print(f"retention scheduler {scheduler.holder} waiting for the lease", flush=True)
    scheduler.run(stop_on_signals())
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ret = sub.add_parser("retention", help="retention floors: enforce, audit, legal holds, forecast")
    rsub = ret.add_subparsers(dest="retention_command", required=True)

    audit = with_config(rsub.add_parser("audit", help="coverage and lock compliance report per point",
                                        description="Exit 0 when every point complies, 1 when any does not."))
    audit.add_argument("--grid", help="only this grid")
    audit.add_argument("--camera", help="only this camera")
    audit.add_argument("--at", help="audit as of this date/time (ISO 8601; default now)")
    audit.add_argument("--format", choices=["table", "json", "csv", "html"], default="table")
    audit.add_argument("--lang", choices=["zh", "en"], default="zh",
                       help="language of the printable html report (json, csv and table carry both)")
    audit.add_argument("--output", help="write the report to this file")
    audit.set_defaults(func=cmd_retention_audit)
    enforce = with_config(rsub.add_parser("enforce", help="one pass: verify/extend locks, lost uploads, expiry"))
    enforce.add_argument("--once", action="store_true", help="run one pass and exit")
    enforce.add_argument("--reconcile-days", type=int, default=None, metavar="N",
                         help="also compare catalog and store for the last N days")
    enforce.add_argument("--json", action="store_true")
    enforce.set_defaults(func=cmd_retention_enforce)
    hold = with_config(rsub.add_parser("hold", help="legal hold (evidence lock) on a camera's time range"))
    hold.add_argument("--camera", required=True)
    hold.add_argument("--from", dest="start", required=True, help="ISO 8601 (no zone: UTC+8)")
    hold.add_argument("--to", dest="end", required=True, help="ISO 8601 (no zone: UTC+8)")
    hold.add_argument("--reason", required=True)
    hold.add_argument("--actor", default=os.environ.get("USER", "operator"), help="who places it (audit log)")
    hold.set_defaults(func=cmd_retention_hold)
    release = with_config(rsub.add_parser("release", help="lift a legal hold"))
    release.add_argument("hold_id", type=int)
    release.add_argument("--actor", default=os.environ.get("USER", "operator"))
    release.set_defaults(func=cmd_retention_release)
    holds = with_config(rsub.add_parser("holds", help="list active legal holds"))
    holds.add_argument("--camera")
    holds.add_argument("--json", action="store_true")
    holds.set_defaults(func=cmd_retention_holds)
    fc = with_config(rsub.add_parser("forecast", help="bytes the floors need versus store capacity",
                                     description="Exit 1 when the floors need more than the capacity."))
    fc.add_argument("--capacity", type=int, default=None, help="store capacity in bytes (default: the "
                    "filesystem store's disk; required for MinIO)")
    fc.add_argument("--json", action="store_true")
    fc.set_defaults(func=cmd_retention_forecast)
    rrun = with_config(rsub.add_parser("run", help="run the scheduled retention jobs (one active process)"))
    rrun.add_argument("--metrics-port", type=int, default=None)
    rrun.add_argument("--metrics-host", default="127.0.0.1")
    rrun.set_defaults(func=cmd_retention_run)
