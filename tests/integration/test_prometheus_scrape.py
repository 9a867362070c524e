"""Debian's Prometheus, on loopback, scrapes a running ``jifang demo`` and ``jifang retention run`` with the
deployed scrape configuration and alert rules; the series the dashboards need are there, and every dashboard
expression evaluates."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ..test_grafana_dashboards import BUILTIN_DURATIONS, PROMETHEUS, by_uid, load, metric_names, queries
from .agent import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
DEMO_CAMERAS = {"33100200001320000001": "key", "33100200001320000002": "important"}
BUDGET = 85  # seconds for the whole test
# $__rate_interval as Grafana would make it for a 2-second scrape (4 scrape intervals, plus a margin)
DURATIONS = {**BUILTIN_DURATIONS, "__rate_interval": "20s"}


class Process:
    """A child process whose output is collected by a thread (so that its pipe never fills)."""

    def __init__(self, name: str, argv: list[str], cwd: Path = REPO) -> None:
        self.name = name
        self.lines: list[str] = []
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout
        for line in self.popen.stdout:
            self.lines.append(line.rstrip())

    def metrics_url(self, deadline: float) -> str:
        def found() -> str | None:
            for line in list(self.lines):
                if match := re.match(r"metrics:\s+(http://127\.0\.0\.1:\d+/metrics)", line):
                    return match.group(1)
            return None

        assert wait(lambda: found() is not None or self.popen.poll() is not None, deadline), self.log()
        url = found()
        assert url, f"{self.name} exited ({self.popen.returncode}) without serving metrics:\n{self.log()}"
        return url

    def stop(self, timeout: float) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def log(self) -> str:
        return f"--- {self.name}:\n" + "\n".join(self.lines[-40:])


def wait(predicate: Callable[[], object], deadline: float, interval: float = 0.5) -> bool:
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (requests.RequestException, KeyError, ValueError):  # not up yet
            pass
        time.sleep(interval)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def exposed_names(url: str) -> set[str]:
    """Names of the series a jifang process exposes now (those with at least one sample)."""
    text = requests.get(url, timeout=5).text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith("jifang_") and not sample.name.endswith("_created")}


def scrape_config(path: Path, targets: dict[str, str], rules: Path) -> dict:
    """The deployed prometheus.yml, pointed at these targets, scraping every 2 seconds."""
    config = yaml.safe_load(path.read_text())
    config["global"].update(scrape_interval="2s", scrape_timeout="2s", evaluation_interval="2s")
    config["rule_files"] = [str(rules)]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets)
    for name, target in targets.items():
        jobs[name]["static_configs"] = [{"targets": [target]}]
    return config


class PrometheusApi:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict]:
        reply = requests.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=5)
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def values(self, expr: str, label: str) -> dict[str, float]:
        return {series["metric"].get(label, ""): float(series["value"][1]) for series in self.query(expr)}

    def rules(self) -> list[dict]:
        body = requests.get(f"{self.base}/api/v1/rules", timeout=5).json()
        return [rule | {"group": group["name"]} for group in body["data"]["groups"] for rule in group["rules"]]


def check_dashboard(api: PrometheusApi, uid: str, exposed: set[str]) -> tuple[int, int]:
    """Every expression of the dashboard evaluates; those over metrics the process exposes return series (one
    with a filter such as ``== 0`` may legitimately return none unless it falls back to ``or vector(0)``; the
    leader condition of the retention panels is a join, not such a filter). Returns (evaluated, non-empty)."""
    evaluated = required = 0
    for query in queries(load(by_uid(uid)), DURATIONS):
        result = api.query(query.promql)
        evaluated += 1
        text = query.promql.replace("(jifang_retention_leader == 1)", "")
        filtered = re.search(r"(==|!=|>=|<=|>|<)\s*[\d.]+", text) and "or vector(0)" not in text
        if metric_names(query.promql) <= exposed and not filtered:
            assert result, f"{uid} {query.where}: no series for {query.expr}"
            required += 1
    return evaluated, required


@pytest.mark.skipif(not PROMETHEUS_BIN.exists(), reason="Debian's prometheus package is not installed")
def test_prometheus_scrapes_the_demo_and_retention(tmp_path: Path) -> None:
    started = time.monotonic()
    deadline = started + BUDGET
    data = tmp_path / "jifang-data"
    processes: list[Process] = []
    try:
        demo = Process("demo", [sys.executable, "-m", "jifang.cli", "demo", "--data", str(data), "--for", "60",
                                "--metrics-port", "0"])
        processes.append(demo)
        demo_url = demo.metrics_url(min(deadline, time.monotonic() + 30))
        assert (data / "jifang.yaml").exists()
        retention = Process("retention", [sys.executable, "-m", "jifang.cli", "retention", "run", "--config",
                                          str(data / "jifang.yaml"), "--metrics-port", "0",
                                          "--metrics-host", "127.0.0.1"])
        processes.append(retention)
        retention_url = retention.metrics_url(min(deadline, time.monotonic() + 30))

        host_port = {url: url.removeprefix("http://").removesuffix("/metrics") for url in (demo_url, retention_url)}
        config = scrape_config(PROMETHEUS / "prometheus.yml",
                               {"jifang-edge": host_port[demo_url], "jifang-retention": host_port[retention_url]},
                               PROMETHEUS / "rules.yml")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = Process("prometheus", [
            str(PROMETHEUS_BIN), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn"], cwd=tmp_path)
        processes.append(prometheus)
        api = PrometheusApi(f"http://127.0.0.1:{port}")
        assert wait(lambda: requests.get(f"{api.base}/-/ready", timeout=2).ok, min(deadline, time.monotonic() + 20)), \
            prometheus.log()

        # the demo's two cameras are up and recording, as Prometheus sees them
        def recording() -> bool:
            up = api.values('jifang_camera_up{job="jifang-edge"}', "camera")
            recorded = api.values("jifang_segments_recorded_total", "camera")
            # the demo's recorded cameras (its recognition cameras come on top when models are installed)
            return all(up.get(c) == 1.0 and recorded.get(c, 0) > 0 for c in DEMO_CAMERAS)

        assert wait(recording, deadline), "\n".join(p.log() for p in processes)

        # every fleet-dashboard metric the demo exposes has series, and every fleet expression evaluates
        fleet = set().union(*(metric_names(q.promql) for q in queries(load(by_uid("jifang-fleet")))))
        from_demo = exposed_names(demo_url) & fleet
        assert {"jifang_camera_up", "jifang_camera_reconnects_total", "jifang_segments_recorded_total",
                "jifang_segments_uploaded_total", "jifang_segments_dropped_total", "jifang_recorded_seconds_total",
                "jifang_upload_lag_seconds", "jifang_spool_bytes", "jifang_spool_limit_bytes",
                "jifang_spool_full"} <= from_demo
        assert wait(lambda: all(api.query(name) for name in from_demo), deadline), \
            [name for name in from_demo if not api.query(name)]
        time.sleep(4)  # two more scrapes, so that rate() over $__rate_interval has two samples or more
        fleet_checked = check_dashboard(api, "jifang-fleet", from_demo)

        # the retention service's metrics, with the retention job names in the job label (honor_labels)
        def audited() -> bool:
            tiers = api.values('jifang_retention_compliant{job="jifang-retention"}', "camera")
            jobs = api.values("jifang_retention_job_last_success_timestamp", "job")
            return set(DEMO_CAMERAS) <= set(tiers) and {"enforce", "reconcile", "audit"} <= set(jobs)

        assert wait(audited, deadline), "\n".join(p.log() for p in processes)
        compliant = api.query("jifang_retention_compliant")
        tiers = {s["metric"]["camera"]: s["metric"]["tier"] for s in compliant}
        assert {camera: tiers.get(camera) for camera in DEMO_CAMERAS} == DEMO_CAMERAS
        assert api.values("jifang_retention_leader", "job") == {"jifang-retention": 1.0}
        retention_checked = check_dashboard(api, "jifang-retention", exposed_names(retention_url))

        # the deployed alert rules are loaded and evaluate without error
        def rules_evaluated() -> bool:
            rules = api.rules()
            return bool(rules) and all(rule["health"] == "ok" for rule in rules)

        assert wait(rules_evaluated, deadline), api.rules()
        assert {rule["group"] for rule in api.rules()} == {"jifang-retention", "jifang-recording"}
        # (evaluated, required to return series): the demo has no quarantined segment, no upload failure, and
        # retention's audit ran before the first upload (no lock margin, no compliant point yet)
        assert fleet_checked[0] >= 29 and fleet_checked[1] >= 27, fleet_checked
        assert retention_checked[0] >= 24 and retention_checked[1] >= 15, retention_checked

        # stop: the demo and the retention service exit cleanly on SIGTERM
        assert retention.stop(30) == 0, retention.log()
        assert demo.stop(60) == 0, demo.log()
        prometheus.stop(30)
        assert time.monotonic() - started < 90
    finally:
        for process in reversed(processes):
            try:
                process.stop(15)
            except subprocess.TimeoutExpired:
                process.kill()
