"""The ``jifang`` command: one entry point, a sub-command per job.

Exit codes: 0 success, 1 a finding (e.g. non-compliant), 2 bad input or an unusable environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from jifang.errors import JifangError

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT = 0, 1, 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# sub-commands

def cmd_edge_run(args: argparse.Namespace) -> int:
    from edge import EdgeAgent
    from jifang.config import load_settings

    settings = load_settings(args.config)
    agent = EdgeAgent(settings, preflight=not args.no_check, agent_id=args.agent_id)
    agent.open()
    port = agent.serve_metrics(args.metrics_host, args.metrics_port)
    print(f"metrics: http://{args.metrics_host or settings.metrics.host}:{port}/metrics", flush=True)
    agent.run(stop_on_signals())
    return EXIT_OK


def cmd_sim_camera(args: argparse.Namespace) -> int:
    import os

    from edge.simcam import SimCamera

    password = None
    if args.user:
        password = os.environ.get(args.password_env or "", None) if args.password_env else None
        if password is None:
            raise JifangError("--user needs --password-env VAR naming an environment variable with the password")
    if args.discovery_port is not None and args.onvif_port is None:
        raise JifangError("--discovery-port needs --onvif-port")
    camera = SimCamera(path=args.path, port=args.port, host=args.host, video=args.video, pattern=args.pattern,
                       onvif_port=args.onvif_port, discovery_port=args.discovery_port,
                       clock_offset_seconds=args.clock_offset, width=args.width,
                       height=args.height, fps=args.fps, bitrate_kbps=args.bitrate, user=args.user,
                       password=password)
    url = camera.start()
    print(f"serving {url}" + (f" (user {args.user})" if args.user else ""), flush=True)
    if camera.onvif is not None:
        print(f"onvif {camera.onvif.xaddr}", flush=True)  # type: ignore[attr-defined]
        if camera.discovery_port is not None:
            print(f"ws-discovery udp://{args.host}:{camera.discovery_port}", flush=True)
    stop = stop_on_signals()
    while not stop.wait(1):
        if camera.process is not None and camera.process.poll() is not None:
            raise JifangError(f"simulated camera exited with code {camera.process.returncode}")
    camera.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo import run_demo

    return run_demo(Path(args.data), duration=args.duration, metrics_port=args.metrics_port)


def cmd_config_check(args: argparse.Namespace) -> int:
    from jifang.config import load_settings

    settings = load_settings(args.config)
    print(f"{args.config}: valid ({len(settings.grids)} grids, {len(settings.cameras)} cameras, "
          f"{settings.storage.kind} storage)")
    return EXIT_OK


def cmd_catalog(args: argparse.Namespace) -> int:
    from jifang.config import load_settings
    from jifang.db import Catalog

    settings = load_settings(args.config)
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    if args.what == "segments":
        rows = [{"camera": r.camera_id, "key": r.key, "start": r.start_at.isoformat(), "end": r.end_at.isoformat(),
                 "bytes": r.bytes, "sha256": r.sha256, "tier": r.tier, "retain_until": r.retain_until.isoformat(),
                 "uploaded_at": r.uploaded_at.isoformat() if r.uploaded_at else None}
                for r in catalog.segments(args.camera)]
        columns = ["camera", "start", "end", "bytes", "retain_until", "uploaded_at", "key"]
    else:
        rows = [{"camera": r.camera_id, "start": r.start_at.isoformat(),
                 "end": r.end_at.isoformat() if r.end_at else None, "cause": r.cause, "detail": r.detail}
                for r in catalog.gaps(args.camera)]
        columns = ["camera", "start", "end", "cause", "detail"]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(row[c]) if row[c] is not None else "-" for c in columns))
    return EXIT_OK


def _moment(text: str) -> datetime:
    """ISO 8601 date or time; a time without zone is taken as China Standard Time (UTC+8)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise JifangError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-27 or 2026-11-27T08:00:00+08:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone(timedelta(hours=8)))
    return value.astimezone(UTC)


def _retention(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from edge import connect_store
    from jifang.config import load_settings
    from jifang.db import Catalog
    from jifang.registry import open_registry
    from retention.service import RetentionService

    settings = load_settings(args.config)
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    settings, _passwords = open_registry(settings, catalog).merge_into(settings, with_passwords=False)
    store = connect_store(settings)
    return RetentionService(settings, catalog, store, lambda: datetime.now(UTC))


def cmd_retention_audit(args: argparse.Namespace) -> int:
    from retention.report import render

    service = _retention(args)
    at = _moment(args.at) if args.at else datetime.now(UTC)
    audits = service.audit(at=at, grid=args.grid, camera=args.camera)
    text = render(audits, args.format, at, service.settings)
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
    hold = service.hold(args.camera, _moment(args.start), _moment(args.end), args.reason, args.actor)
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
    import shutil

    from retention.forecast import by_tier, forecast

    service = _retention(args)
    points = forecast(service.settings, service.ledger, datetime.now(UTC))
    totals = by_tier(points)
    needed = sum(totals.values())
    capacity = args.capacity
    if capacity is None and service.settings.storage.kind == "filesystem":
        capacity = shutil.disk_usage(service.settings.storage.path).total
    gib = 1024**3
    if args.json:
        print(json.dumps({"points": [p.__dict__ for p in points], "by_tier_bytes": totals, "needed_bytes": needed,
                          "capacity_bytes": capacity}, indent=2))
    else:
        for p in points:
            rate = f"{p.bitrate_bps / 1000:.0f} kbit/s" if p.bitrate_bps else "no data (4 Mbit/s assumed)"
            print(f"{p.camera}\t{p.tier}\t{rate}\t{p.floor_seconds / 86400:.0f} d\t{p.bytes_needed / gib:.1f} GiB")
        for tier, total in sorted(totals.items()):
            print(f"tier {tier}: {total / gib:.1f} GiB")
        print(f"needed {needed / gib:.1f} GiB" + (f" of {capacity / gib:.1f} GiB capacity" if capacity else ""))
    if capacity is not None and needed > capacity:
        print(f"warning: the floors need {needed / gib:.1f} GiB but the store has {capacity / gib:.1f} GiB",
              file=sys.stderr)
        return EXIT_FINDING
    return EXIT_OK


def cmd_retention_run(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from retention.metrics import RetentionMetrics
    from retention.scheduler import Scheduler

    service = _retention(args)
    metrics = RetentionMetrics()
    if args.metrics_port is not None:
        server, _thread = start_http_server(args.metrics_port, addr=args.metrics_host, registry=metrics.registry)
        print(f"metrics: http://{args.metrics_host}:{server.server_port}/metrics", flush=True)
    scheduler = Scheduler(service, metrics)
    print(f"retention scheduler {scheduler.holder} waiting for the lease", flush=True)
    scheduler.run(stop_on_signals())
    return EXIT_OK


# parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jifang", description="video-surveillance edge and retention management "
                                     "(DB3310/T 55-2019)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run everything on this machine with two simulated cameras",
                          description="Start two simulated cameras and an edge agent on embedded defaults "
                          "(SQLite, filesystem store under --data). Writes the configuration it runs with to "
                          "DATA/jifang.yaml so other commands can use --config.")
    demo.add_argument("--data", default="jifang-data", help="data folder (default ./jifang-data)")
    demo.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--metrics-port", type=int, default=9108, help="metrics port (0: any free port)")
    demo.set_defaults(func=cmd_demo)

    edge = sub.add_parser("edge", help="edge agent").add_subparsers(dest="edge_command", required=True)
    run = edge.add_parser("run", help="record every camera of the configuration until SIGTERM",
                          description="Record every enabled camera into the object store, with retention locks, "
                          "until SIGTERM/SIGINT; then close the current segments and upload the spool.")
    run.add_argument("--config", required=True, type=Path, help="configuration file (YAML)")
    run.add_argument("--metrics-port", type=int, default=None, help="Prometheus metrics port (default from config)")
    run.add_argument("--metrics-host", default=None, help="metrics bind address (default from config)")
    run.add_argument("--no-check", action="store_true", help="skip the start-up stream check of each camera")
    run.add_argument("--agent-id", help="name of this agent in the fleet (default: $JIFANG_AGENT_ID, else host:pid)")
    run.set_defaults(func=cmd_edge_run)

    sim = sub.add_parser("sim", help="simulators").add_subparsers(dest="sim_command", required=True)
    cam = sim.add_parser("camera", help="serve a simulated RTSP camera (H.264)",
                         description="A real RTSP server (GStreamer) looping a video file or a test pattern.")
    source = cam.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, help="video file to loop")
    source.add_argument("--pattern", nargs="?", const="ball", default="ball", metavar="NAME",
                        help="test pattern with a clock (default ball; smpte, snow: busy, full bitrate, ...)")
    cam.add_argument("--host", default="127.0.0.1")
    cam.add_argument("--port", type=int, default=8554)
    cam.add_argument("--path", default="cam1")
    cam.add_argument("--width", type=int, default=640)
    cam.add_argument("--height", type=int, default=360)
    cam.add_argument("--fps", type=int, default=10)
    cam.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    cam.add_argument("--user", help="require RTSP basic auth with this user")
    cam.add_argument("--password-env", help="environment variable holding the password for --user")
    cam.add_argument("--onvif-port", type=int, default=None, help="also speak ONVIF on this port (0: any free)")
    cam.add_argument("--discovery-port", type=int, default=None,
                     help="answer WS-Discovery probes (unicast) on this UDP port (0: any free; 3702 is standard)")
    cam.add_argument("--clock-offset", type=float, default=0.0, help="simulated camera clock error in seconds")
    cam.set_defaults(func=cmd_sim_camera)

    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate a configuration file")
    check.add_argument("config", type=Path)
    check.set_defaults(func=cmd_config_check)

    ret = sub.add_parser("retention", help="retention floors: enforce, audit, legal holds, forecast")
    rsub = ret.add_subparsers(dest="retention_command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", required=True, type=Path, help="configuration file (YAML)")
        return p

    audit = with_config(rsub.add_parser("audit", help="coverage and lock compliance report per point",
                                        description="Exit 0 when every point complies, 1 when any does not."))
    audit.add_argument("--grid", help="only this grid")
    audit.add_argument("--camera", help="only this camera")
    audit.add_argument("--at", help="audit as of this date/time (ISO 8601; default now)")
    audit.add_argument("--format", choices=["table", "json", "csv", "html"], default="table")
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

    from jifang.cli_dashboard import register_commands as register_dashboard
    from jifang.cli_registry import register_commands
    from recognition.cli import register_commands as register_recognition

    register_commands(sub)
    register_recognition(sub)
    register_dashboard(sub)

    catalog = sub.add_parser("catalog", help="read the segment catalog")
    catalog.add_argument("what", choices=["segments", "gaps"])
    catalog.add_argument("--config", required=True, type=Path)
    catalog.add_argument("--camera", help="only this camera ID")
    catalog.add_argument("--json", action="store_true", help="print JSON")
    catalog.set_defaults(func=cmd_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except JifangError as exc:
        print(f"jifang: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
