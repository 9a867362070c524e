"""The ``jifang`` command: one entry point, a sub-command per job.

Exit codes: 0 success, 1 a finding (e.g. non-compliant), 2 bad input or an unusable environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
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
    agent = EdgeAgent(settings, preflight=not args.no_check)
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
    camera = SimCamera(path=args.path, port=args.port, host=args.host, video=args.video, pattern=args.pattern,
                       width=args.width,
                       height=args.height, fps=args.fps, bitrate_kbps=args.bitrate, user=args.user,
                       password=password)
    url = camera.start()
    print(f"serving {url}" + (f" (user {args.user})" if args.user else ""), flush=True)
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
    cam.set_defaults(func=cmd_sim_camera)

    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate a configuration file")
    check.add_argument("config", type=Path)
    check.set_defaults(func=cmd_config_check)

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
