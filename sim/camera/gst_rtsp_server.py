"""A simulated camera: a GStreamer RTSP server serving H.264 from a test pattern or a looped video file.

Runs under Debian's /usr/bin/python3 (the ``gi`` bindings live there, not in the project's venv), so it
imports only the standard library and ``gi``. ``jifang sim camera`` starts it as a subprocess. When the
server listens and its stream runs it prints one line ``READY rtsp://HOST:PORT/PATH`` on stdout.

The stream is started once, by a viewer inside the server, and stays up, as a real camera's encoder runs
whether anyone watches or not. Without it the shared media is prepared when a first client arrives and torn
down when the last leaves, and gst-rtsp-server 1.22 aborts the whole server (``gst_rtsp_media_get_rates:
assertion failed``) when clients PLAY while that happens: seen with an edge agent's concurrent stream checks
and recorders (8 cameras, 2 of 6 starts), which a real camera never does to its clients.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def encoder_tail(bitrate_kbps: int, fps: int) -> str:
    # key frame every second so a recorder can cut segments on any second boundary
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} key-int-max={fps} "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
    )


def caps(width: int, height: int, fps: int) -> str:
    return f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"


class LoopingFileSource:
    """Decodes a video file at real-time pace, forever, and hands each frame to the RTSP media's appsrc."""

    def __init__(self, path: str, width: int, height: int, fps: int) -> None:
        uri = Gst.filename_to_uri(path)
        self.pipeline = Gst.parse_launch(
            f'uridecodebin uri="{uri}" ! videoconvert ! videoscale ! videorate ! {caps(width, height, fps)} '
            "! appsink name=sink sync=true emit-signals=true max-buffers=2 drop=true"
        )
        self.appsrc: Gst.Element | None = None
        self.pipeline.get_by_name("sink").connect("new-sample", self._on_sample)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::eos", self._rewind)
        bus.connect("message::error", self._on_error)
        self.pipeline.set_state(Gst.State.PLAYING)

    def _rewind(self, *_args: object) -> None:
        self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)

    def _on_error(self, _bus: object, message: Gst.Message) -> None:
        err, _debug = message.parse_error()
        print(f"simcam: cannot decode video: {err.message}", file=sys.stderr, flush=True)
        sys.exit(2)

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        target = self.appsrc
        if target is not None:
            buffer = sample.get_buffer().copy()
            buffer.pts = buffer.dts = Gst.CLOCK_TIME_NONE  # appsrc do-timestamp stamps live running time
            target.emit("push-buffer", buffer)
        return Gst.FlowReturn.OK


def main() -> int:
    parser = argparse.ArgumentParser(description="simulated RTSP camera")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="cam1")
    parser.add_argument("--video", help="video file to loop; default: a moving test pattern")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern (ball, smpte, snow, ...)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    parser.add_argument("--user")
    parser.add_argument("--password-env", help="environment variable holding the password")
    parser.add_argument("--auth", choices=["basic", "digest"], default="basic",
                        help="RTSP authentication scheme (most IP cameras use digest)")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)
    tail = encoder_tail(args.bitrate, args.fps)
    looping: LoopingFileSource | None = None
    if args.video:
        looping = LoopingFileSource(args.video, args.width, args.height, args.fps)
        factory.set_launch(
            "( appsrc name=frames is-live=true do-timestamp=true format=time "
            f"caps={caps(args.width, args.height, args.fps)} ! queue ! videoconvert ! {tail} )"
        )

        def on_configure(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
            looping.appsrc = media.get_element().get_by_name("frames")

        factory.connect("media-configure", on_configure)
    else:
        factory.set_launch(
            f"( videotestsrc is-live=true pattern={args.pattern} ! {caps(args.width, args.height, args.fps)} "
            f'! timeoverlay font-desc="Sans 24" ! videoconvert ! {tail} )'
        )

    if args.user:
        password = os.environ.get(args.password_env or "", "")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        if args.auth == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, password, token)
        else:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, password), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
        )

    server.get_mount_points().add_factory("/" + args.path.strip("/"), factory)
    if server.attach(None) == 0:
        print(f"simcam: cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 2
    url = f"rtsp://{args.host}:{server.get_bound_port()}/{args.path.strip('/')}"
    loop = GLib.MainLoop()
    viewer = start_internal_viewer(url, args.user, os.environ.get(args.password_env or "", ""), loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    viewer.set_state(Gst.State.NULL)
    return 0 if viewer.get_name() != "failed" else 2


STREAM_START_SECONDS = 15


def start_internal_viewer(url: str, user: str | None, password: str, loop: GLib.MainLoop) -> Gst.Element:
    """Pull the stream from inside the server (over TCP, into a fakesink), keeping the shared media up; READY is
    printed at its first buffer, so a client never meets a media that is still being prepared."""
    viewer = Gst.parse_launch(f"rtspsrc name=src location={url} protocols=tcp latency=0 ! fakesink name=sink "
                              "sync=false signal-handoffs=true")
    if user:
        source = viewer.get_by_name("src")
        source.set_property("user-id", user)
        source.set_property("user-pw", password)
    sink = viewer.get_by_name("sink")
    started = []

    def on_first_buffer(*_args: object) -> None:  # in the streaming thread: say READY once, then stop listening
        if not started:
            started.append(True)
            print(f"READY {url}", flush=True)
            GLib.idle_add(lambda: sink.set_property("signal-handoffs", False) and False)

    def give_up() -> bool:
        if not started:
            print(f"simcam: the stream did not start within {STREAM_START_SECONDS} s", file=sys.stderr, flush=True)
            viewer.set_name("failed")
            loop.quit()
        return False

    sink.connect("handoff", on_first_buffer)
    GLib.timeout_add_seconds(STREAM_START_SECONDS, give_up)
    viewer.set_state(Gst.State.PLAYING)
    return viewer


if __name__ == "__main__":
    sys.exit(main())
