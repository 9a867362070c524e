"""Recording cost of jifang against plain ffmpeg on the same streams, in one run (on demand; prints numbers).

    .venv/bin/python bench/record_bench.py [--streams 8 16] [--seconds 40] [--repeat K] [--width 1920
                                            --height 1080 --fps 25 --bitrate 4000]

For each N: one simulated H.264 camera (shared media: encoded once, served to every client), then at the
same moment the edge agent recording N cameras pulling it and N bare ``ffmpeg -rtsp_transport tcp -i URL
-c copy -f segment`` processes writing the same fragmented MP4. Both run side by side through the same
window, so they see the same stream and the same machine load, and the ratio is the honest figure:

- CPU per stream: the agent with all its descendants (ffmpeg recorders, any ffprobe) against the ffmpegs;
- memory per stream: PSS and USS from ``/proc/<pid>/smaps_rollup`` (RSS counts shared libraries once per
  process and overstates a fleet of ffmpegs about 3x), sampled through the window;
- time to first segment: from the start until every camera has one finished segment (jifang: catalogued;
  ffmpeg: listed by its segment muxer);
- the machine's load (load average and the share of all cores busy during the window), since on a shared
  machine both sides are slowed alike but the absolute numbers are not.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jifang.sim.camera import SimCamera  # noqa: E402

from jifang.db import Catalog  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
GRID = "331002001001001"
MIB = 1024 * 1024


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                tree.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    return tree


def descendants(root: int) -> list[int]:
    tree = children_of()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def _process_cpu_clock(pid: int) -> int:
    """The id of ``pid``'s CPU-time clock (``clock_getcpuclockid``): its threads' exact run time in ns, where
    /proc's utime and stime are sampled at the tick (10 ms) and a process's share of it is a matter of chance."""
    return (~pid << 3) | 2  # CPUCLOCK_SCHED, whole process (the kernel's encoding of a pid's clock)


def cpu_seconds(pids: list[int], with_reaped: bool = True) -> float:
    """CPU of live processes (their CPU-time clocks), plus what their reaped children used (ffprobe runs,
    restarted ffmpegs: cutime and cstime, counted in ticks, the only record a reaped child leaves)."""
    total = 0.0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            own = time.clock_gettime_ns(_process_cpu_clock(pid)) / 1e9
        except OSError:
            continue
        total += own
        if with_reaped:
            total += (int(fields[13]) + int(fields[14])) / TICKS
    return total


def memory(pids: list[int]) -> tuple[float, float, float]:
    """(PSS, USS, RSS) in MiB summed over ``pids``."""
    pss = uss = rss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        values = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.endswith("kB")}
        pss += values.get("Pss", 0)
        uss += values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
        rss += values.get("Rss", 0)
    return pss / 1024, uss / 1024, rss / 1024


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    values = list(map(int, Path("/proc/stat").read_text().splitlines()[0].split()[1:]))
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Side:
    name: str
    cpu: float = 0.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    first_segment_s: float | None = None
    own_cpu: float = 0.0  # the root process alone (the Python agent), without its children

    def mean_memory(self) -> tuple[float, float, float]:
        if not self.samples:
            return 0.0, 0.0, 0.0
        return tuple(sum(sample[i] for sample in self.samples) / len(self.samples) for i in range(3))  # type: ignore[return-value]


def plain_command(url: str, folder: Path, segment_seconds: int) -> list[str]:
    """The physical limit: bare copy-mode segmenting into the same fragmented MP4, nothing else."""
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
            "-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_time", str(segment_seconds),
            "-reset_timestamps", "1", "-segment_format", "mp4",
            "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
            "-segment_list", str(folder / "list.csv"), "-segment_list_type", "csv", str(folder / "seg-%06d.mp4")]


def agent_config(work: Path, url: str, streams: int) -> Path:
    config = {
        "version": 1,
        "database": {"url": f"sqlite:///{work / 'jifang.db'}"},
        "storage": {"kind": "filesystem", "path": str(work / "store")},
        "recorder": {"segment_seconds": 10, "spool_dir": str(work / "spool")},
        "grids": [{"code": GRID, "name": "bench"}],
        "cameras": [{"id": f"331002000013200{i:05d}", "name": f"bench {i}", "grid": GRID, "tier": "important",
                     "rtsp_url": url} for i in range(1, streams + 1)],
    }
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cameras_with_segments(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(DISTINCT camera_id) FROM segments").fetchone()[0]
    except sqlite3.Error:
        return 0


def run_once(args: argparse.Namespace, url: str, streams: int, work: Path) -> tuple[Side, Side, dict]:
    work.mkdir(parents=True)
    config = agent_config(work, url, streams)
    folders = [work / f"plain-{i}" for i in range(streams)]
    for folder in folders:
        folder.mkdir()
    jifang, plain = Side("jifang"), Side("plain ffmpeg")
    if not args.fresh_database:
        # an agent's usual start: the schema exists (every start after its first); --fresh-database measures
        # the first start, which migrates it (in a child process: the agent's memory is the same)
        Catalog(f"sqlite:///{work / 'jifang.db'}").migrate()
    t0 = time.monotonic()
    agent = subprocess.Popen([sys.executable, "-m", "jifang.cli", "--log-level", "warning", "edge", "run",
                              "--config", str(config), "--metrics-port", "0"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ffmpegs = [subprocess.Popen(plain_command(url, folder, 10), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for folder in folders]
    try:
        deadline = t0 + args.first_segment_timeout
        while time.monotonic() < deadline and (jifang.first_segment_s is None or plain.first_segment_s is None):
            now = time.monotonic() - t0
            if jifang.first_segment_s is None and cameras_with_segments(work / "jifang.db") >= streams:
                jifang.first_segment_s = now
            if plain.first_segment_s is None and all(
                    (f / "list.csv").exists() and (f / "list.csv").stat().st_size for f in folders):
                plain.first_segment_s = now
            time.sleep(0.25)
        time.sleep(5)  # both sides in steady state
        agent_pids = descendants(agent.pid)
        plain_pids = [p.pid for p in ffmpegs]
        cpu0 = cpu_seconds(agent_pids), cpu_seconds(plain_pids)
        own0 = cpu_seconds([agent.pid], with_reaped=False)
        busy0, w0 = machine_busy(), time.monotonic()
        load0 = os.getloadavg()[0]
        end = w0 + args.seconds
        while time.monotonic() < end:
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
            jifang.samples.append(memory(descendants(agent.pid)))
            plain.samples.append(memory(plain_pids))
        elapsed = time.monotonic() - w0
        # the agent's descendants now (an ffprobe that started and ended in the window is in cutime)
        jifang.cpu = (cpu_seconds(sorted(set(agent_pids) | set(descendants(agent.pid)))) - cpu0[0]) / elapsed
        plain.cpu = (cpu_seconds(plain_pids) - cpu0[1]) / elapsed
        jifang.own_cpu = (cpu_seconds([agent.pid], with_reaped=False) - own0) / elapsed
        busy1 = machine_busy()
        machine = {"elapsed": elapsed, "load0": load0, "load1": os.getloadavg()[0],
                   "busy": (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), "cores": os.cpu_count()}
    finally:
        agent.send_signal(signal.SIGTERM)
        for process in ffmpegs:
            process.send_signal(signal.SIGTERM)
        for process in [agent, *ffmpegs]:
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
    return jifang, plain, machine


def report(streams: int, jifang: Side, plain: Side, machine: dict) -> dict[str, float]:
    """Print one run's table; return its ratios (jifang over plain ffmpeg) for the summary of repeats."""
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    def seconds(value: float | None) -> str:
        return f"{value:.1f} s" if value is not None else "not reached"

    j_pss, j_uss, j_rss = (value / streams for value in jifang.mean_memory())
    p_pss, p_uss, p_rss = (value / streams for value in plain.mean_memory())
    j_cpu, p_cpu = 100 * jifang.cpu / streams, 100 * plain.cpu / streams
    print(f"\nN = {streams} streams, window {machine['elapsed']:.0f} s; machine: {machine['cores']} cores, "
          f"{100 * machine['busy']:.0f} % of all cores busy, load average {machine['load0']:.1f} -> "
          f"{machine['load1']:.1f}")
    print(f"  {'per stream':<28}{'jifang':>12}{'plain ffmpeg':>14}{'ratio':>9}")
    print(f"  {'CPU (% of one core)':<28}{j_cpu:>12.2f}{p_cpu:>14.2f}{ratio(j_cpu, p_cpu):>9}")
    print(f"  {'  of which the Python agent':<28}{100 * jifang.own_cpu / streams:>12.2f}"
          "   (validate, sha256, upload, catalog, supervision)")
    print(f"  {'PSS (MiB)':<28}{j_pss:>12.1f}{p_pss:>14.1f}{ratio(j_pss, p_pss):>9}")
    print(f"  {'USS (MiB)':<28}{j_uss:>12.1f}{p_uss:>14.1f}{ratio(j_uss, p_uss):>9}")
    print(f"  {'RSS (MiB, overstates)':<28}{j_rss:>12.1f}{p_rss:>14.1f}{ratio(j_rss, p_rss):>9}")
    print(f"  {'time to first segment, all':<28}{seconds(jifang.first_segment_s):>12}"
          f"{seconds(plain.first_segment_s):>14}"
          f"{ratio(jifang.first_segment_s or 0, plain.first_segment_s or 0):>9}")
    sys.stdout.flush()
    measured = {"CPU": (j_cpu, p_cpu), "PSS": (j_pss, p_pss),
                "first segment": (jifang.first_segment_s or 0, plain.first_segment_s or 0)}
    return {name: ours / limit for name, (ours, limit) in measured.items() if ours and limit}


def summarise(streams: int, runs: list[dict[str, float]]) -> None:
    """The median and range of each ratio over the repeats: one run on a shared machine is an anecdote."""
    print(f"\nN = {streams}, {len(runs)} runs: ratio to plain ffmpeg, median (range)")
    for name in ("CPU", "PSS", "first segment"):
        values = sorted(run[name] for run in runs if name in run)
        if values:
            print(f"  {name:<16}{statistics.median(values):.2f}x  ({values[0]:.2f}x - {values[-1]:.2f}x)")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seconds", type=int, default=40, help="measurement window per N")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per N (N values interleaved), then the median and range of each ratio")
    parser.add_argument("--first-segment-timeout", type=float, default=90)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--bitrate", type=int, default=4000)
    parser.add_argument("--pattern", default="smpte", help="sim camera pattern; snow is busiest (full bitrate)")
    parser.add_argument("--fresh-database", action="store_true",
                        help="let the agent create the catalog (its first start) instead of finding it migrated")
    args = parser.parse_args()
    camera = SimCamera(path="bench", width=args.width, height=args.height, fps=args.fps,
                       bitrate_kbps=args.bitrate, pattern=args.pattern)
    url = camera.start()
    print(f"one simulated camera {args.width}x{args.height} {args.fps} fps ~{args.bitrate} kbit/s, shared by all "
          f"clients; jifang and plain ffmpeg record it side by side")
    try:
        with tempfile.TemporaryDirectory(prefix="jifang-bench-") as tmp:
            runs: dict[int, list[dict[str, float]]] = {streams: [] for streams in args.streams}
            for attempt in range(args.repeat):
                for streams in args.streams:
                    sim0 = cpu_seconds([camera.process.pid], with_reaped=False)  # type: ignore[union-attr]
                    t0 = time.monotonic()
                    jifang, plain, machine = run_once(args, url, streams, Path(tmp) / f"n{streams}-{attempt}")
                    runs[streams].append(report(streams, jifang, plain, machine))
                    sim = cpu_seconds([camera.process.pid], with_reaped=False) - sim0  # type: ignore[union-attr]
                    print(f"  (the simulated camera's encoder, counted on neither side: "
                          f"{100 * sim / (time.monotonic() - t0):.0f} % of one core)")
            if args.repeat > 1:
                for streams, results in runs.items():
                    summarise(streams, results)
    finally:
        camera.stop()


if __name__ == "__main__":
    main()
