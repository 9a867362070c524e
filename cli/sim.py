"""``jifang sim camera``: simulators for demos and tests."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jifang.cli.common import EXIT_OK
from jifang.sim.camera import SimCamera

from jifang.errors import JifangError
from jifang.supervision import stop_on_signals


def cmd_sim_camera(args: argparse.Namespace) -> int:
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


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
