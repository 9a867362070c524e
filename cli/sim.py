"""``jifang sim camera``: simulators for demos and tests."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jifang.cli.common import EXIT_OK
from jifang.sim.camera import SimCamera
from jifang.sim.gb28181_device import SimGbDevice

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


def cmd_sim_gb28181_device(args: argparse.Namespace) -> int:
    password = os.environ.get(args.password_env)
    if password is None:
        raise JifangError(f"--password-env {args.password_env}: the environment variable is not set")
    host, _, port = args.server.rpartition(":")
    if not port.isdigit():
        raise JifangError(f"--server {args.server!r}: expected HOST:PORT of the platform's SIP server")
    device = SimGbDevice(args.device_id, password, (host or "127.0.0.1", int(port)), args.platform_id, args.domain,
                         transport=args.transport, channels=args.channels, split=args.split,
                         keepalive_interval=args.keepalive_interval, codec=args.codec, video=args.video,
                         width=args.width, height=args.height, fps=args.fps, bitrate_kbps=args.bitrate)
    device.fault.drop_keepalives = args.drop_keepalives
    device.fault.refuse_invite = args.refuse_invite
    device.fault.udp_reorder, device.fault.udp_loss = args.udp_reorder, args.udp_loss
    device.start()
    print(f"registered {args.device_id} over {args.transport.upper()} from {device.local[0]}:{device.local[1]}; "
          f"channels {' '.join(device.channel_ids)}", flush=True)
    stop = stop_on_signals()
    vanish_at = args.vanish_after
    started = 0.0
    while not stop.wait(1):
        started += 1
        if vanish_at is not None and started >= vanish_at and not device.fault.vanished:
            print("vanishing: no more keepalives, answers or media", flush=True)
            device.fault.vanished = True
    device.stop()
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

    gb = sim.add_parser("gb28181-device", help="a simulated GB/T 28181 device (camera/NVR) registering over SIP",
                        description="Registers to a GB/T 28181 platform (digest auth), sends keepalives, answers "
                        "Catalog and DeviceInfo, and streams PS over RTP when invited, until BYE.")
    gb.add_argument("--server", required=True, help="HOST:PORT of the platform's SIP server")
    gb.add_argument("--device-id", default="33100200001180000001", help="20-digit SIP user ID of the device")
    gb.add_argument("--password-env", required=True, help="environment variable holding the SIP password")
    gb.add_argument("--platform-id", default="33100200002000000001", help="the platform's 20-digit SIP ID")
    gb.add_argument("--domain", default="3310020000", help="the platform's SIP domain")
    gb.add_argument("--transport", choices=["udp", "tcp"], default="udp", help="SIP transport")
    gb.add_argument("--channels", type=int, default=4)
    gb.add_argument("--split", type=int, default=1, help="send the Catalog in this many MESSAGEs")
    gb.add_argument("--keepalive-interval", type=float, default=60.0)
    gb.add_argument("--codec", choices=["h264", "h265"], default="h264")
    gb.add_argument("--video", type=Path, help="video file to loop (copied; its codec must match --codec)")
    gb.add_argument("--width", type=int, default=320)
    gb.add_argument("--height", type=int, default=240)
    gb.add_argument("--fps", type=int, default=10)
    gb.add_argument("--bitrate", type=int, default=300, help="kbit/s")
    gb.add_argument("--drop-keepalives", action="store_true", help="register but never send a keepalive")
    gb.add_argument("--refuse-invite", type=int, default=0, metavar="CODE", help="answer every INVITE with CODE")
    gb.add_argument("--udp-reorder", type=float, default=0.0, help="share of UDP RTP packets sent out of order")
    gb.add_argument("--udp-loss", type=float, default=0.0, help="share of UDP RTP packets not sent")
    gb.add_argument("--vanish-after", type=float, default=None, metavar="SECONDS",
                    help="after this long, stop sending anything (simulates a device that lost power)")
    gb.set_defaults(func=cmd_sim_gb28181_device)
