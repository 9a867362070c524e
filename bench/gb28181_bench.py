"""Channels per core recorded over GB/T 28181 (PS over RTP/TCP -> ffmpeg -c copy -> MP4) against the same
streams over RTSP, as a ratio (run on demand; prints numbers).

    .venv/bin/python bench/gb28181_bench.py [--streams 4] [--seconds 60] [--width 640 --height 360 --fps 10
                                             --bitrate 500]

Both runs record N streams of the same clip (made once with ffmpeg, then copied by the simulators, so their
cost stays small) with `jifang edge run` on the filesystem store; the CPU of the agent process and its children
(ffmpeg recorders, ffprobe validations; for GB/T 28181 also the Python RTP receivers inside the agent) is
measured over the steady state. Simulators are separate processes and not counted.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jifang.gb28181.devices import DeviceStore  # noqa: E402
from jifang.sim.camera import SimCamera  # noqa: E402
from jifang.sim.gb28181_device import SimGbDevice  # noqa: E402

from bench.record_bench import process_cpu_seconds, tree_cpu_seconds  # noqa: E402
from jifang.crypto import SecretBox  # noqa: E402
from jifang.db import Catalog  # noqa: E402
from jifang.registry import Registry  # noqa: E402
from jifang.store.base import utc_now  # noqa: E402

GRID = "331002001001001"
DEVICE = "33100200001180000001"
PLATFORM, DOMAIN = "33100200002000000001", "3310020000"


def make_clip(args: argparse.Namespace, work: Path) -> Path:
    clip = work / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=size={args.width}x{args.height}:rate={args.fps}", "-t", "30", "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(2 * args.fps), "-bf", "0",
                    "-b:v", f"{args.bitrate}k", "-y", str(clip)], check=True)
    return clip


def start_agent(config: dict, work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    agent = subprocess.Popen([sys.executable, "-m", "jifang.cli", "--log-level", "warning", "edge", "run",
                              "--config", str(path), "--metrics-port", "0", "--no-check"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        assert agent.stdout is not None
        for line in agent.stdout:
            lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    return agent, lines


def measure(agent: subprocess.Popen, seconds: float) -> tuple[float, float, float]:
    time.sleep(15)  # INVITE/connect, first key frame, steady state
    agent0, tree0, t0 = process_cpu_seconds(agent.pid), tree_cpu_seconds(agent.pid), time.monotonic()
    time.sleep(seconds)
    return (tree_cpu_seconds(agent.pid) - tree0, process_cpu_seconds(agent.pid) - agent0, time.monotonic() - t0)


def recorded(catalog: Catalog) -> tuple[int, int, float]:
    """Segments, cameras with segments, seconds of video."""
    rows = catalog.segments()
    return len(rows), len({r.camera_id for r in rows}), sum((r.end_at - r.start_at).total_seconds() for r in rows)


def base_config(work: Path) -> dict:
    return {"version": 1, "database": {"url": f"sqlite:///{work / 'jifang.db'}"},
            "storage": {"kind": "filesystem", "path": str(work / "store")},
            "recorder": {"segment_seconds": 10, "spool_dir": str(work / "spool")},
            "grids": [{"code": GRID, "name": "bench"}]}


def bench_rtsp(args: argparse.Namespace, clip: Path, work: Path) -> tuple[float, float, float, int]:
    camera = SimCamera(path="bench", video=clip)
    url = camera.start()
    config = base_config(work)
    config["cameras"] = [{"id": f"331002000013200{i:05d}", "name": f"bench {i}", "grid": GRID, "tier": "important",
                          "rtsp_url": url} for i in range(1, args.streams + 1)]
    agent, _lines = start_agent(config, work, dict(os.environ))
    try:
        tree, python, elapsed = measure(agent, args.seconds)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        camera.stop()
    return tree, python, elapsed, recorded(Catalog(config["database"]["url"]))


def bench_gb28181(args: argparse.Namespace, clip: Path, work: Path) -> tuple[float, float, float, int]:
    key = SecretBox.new_key()
    env = {**os.environ, "JIFANG_REGISTRY_KEY": key}
    config = base_config(work)
    config["gb28181"] = {"enabled": True, "host": "127.0.0.1", "port": 0, "platform_id": PLATFORM,
                         "domain": DOMAIN}
    catalog = Catalog(config["database"]["url"])
    catalog.migrate()
    registry = Registry(catalog, SecretBox(key))
    registry.add_grid(GRID, "bench", "城市社区")
    store = DeviceStore(catalog, SecretBox(key))
    store.add_device(DEVICE, "bench", "bench", utc_now())
    agent, lines = start_agent(config, work, env)
    device = None
    try:
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline:
            port = next((int(m.group(1)) for line in lines if (m := re.match(r"gb28181: sip \S+:(\d+)", line))), None)
            time.sleep(0.2)
        if port is None:
            raise SystemExit("agent did not start:\n" + "\n".join(lines[-20:]))
        device = SimGbDevice(DEVICE, "bench", ("127.0.0.1", port), PLATFORM, DOMAIN, transport="tcp",
                             channels=args.streams, video=clip, keepalive_interval=10)
        device.start()
        while len(store.channels(DEVICE)) < args.streams and time.monotonic() < deadline:
            time.sleep(0.2)
        for channel in device.channel_ids:
            store.assign(registry, channel, GRID, "important", "bench", utc_now())
        tree, python, elapsed = measure(agent, args.seconds)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        if device is not None:
            device.stop()
    return tree, python, elapsed, recorded(catalog)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--bitrate", type=int, default=500, help="kbit/s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gb28181-bench-") as tmp:
        work = Path(tmp)
        clip = make_clip(args, work)
        results = {}
        for name, run in (("rtsp", bench_rtsp), ("gb28181", bench_gb28181)):
            folder = work / name
            folder.mkdir()
            results[name] = run(args, clip, folder)
    print(f"{args.streams} streams of {args.width}x{args.height} {args.fps} fps ~{args.bitrate} kbit/s H.264, "
          f"measured {args.seconds:.0f} s each")
    per_core = {}
    for name, (tree, python, elapsed, (segments, cameras, video)) in results.items():
        share = tree / elapsed / args.streams
        per_core[name] = 1 / share if share else float("inf")
        agent_share = python / elapsed / args.streams
        print(f"  {name:8} CPU per stream {100 * share:6.2f} % of one core (Python agent {100 * agent_share:5.2f} %), "
              f"channels per core {per_core[name]:6.1f}")
        print(f"           recorded {segments} segments of {cameras} streams, {video:.0f} s of video")
    print(f"  ratio GB/T 28181 : RTSP channels per core = {per_core['gb28181'] / per_core['rtsp']:.2f}")


if __name__ == "__main__":
    main()
