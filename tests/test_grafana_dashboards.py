"""The Grafana dashboards (deploy/grafana/*.json) are well formed, their PromQL parses (Debian's promtool) and
uses only metrics that jifang exports; the Prometheus scrape configuration passes ``promtool check config``."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from jifang.recognition.metrics import DeliveryMetrics, RecognitionMetrics
from jifang.recorder.metrics import RecorderMetrics
from jifang.retention.metrics import RetentionMetrics
from prometheus_client import CollectorRegistry

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))
PROMETHEUS = DEPLOY / "prometheus"

# Grafana's built-in interval variables, replaced by a duration before PromQL is checked
BUILTIN_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
# panel datasources: the dashboard's "datasource" variable, or the provisioned datasource's uid
DATASOURCE_UIDS = {"${datasource}", "$datasource", "prometheus"}


# exported metric names


def exported_names(*exporters: type) -> set[str]:
    """Names of the series jifang exports (by default: all exporters): counters as ``<name>_total``, gauges by
    name, histograms as ``_bucket``/``_sum``/``_count``, summaries by name (quantiles) and ``_sum``/``_count``."""
    registry = CollectorRegistry()
    for exporter in exporters or (RecorderMetrics, RetentionMetrics, RecognitionMetrics, DeliveryMetrics):
        exporter(registry)
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        elif family.type == "summary":
            names.update({family.name, family.name + "_sum", family.name + "_count"})
        else:
            names.add(family.name)
    return names


# PromQL: variables and metric names

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
TOKEN = re.compile(r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z]*)|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"
                   r"|(?P<other>.)", re.S)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a tokenizer, not a parser: the expression must also
    pass promtool, which the tests check separately)."""
    text = STRING.sub('""', expr)
    assert "__name__" not in text, f"select metrics by name, not by __name__ matchers: {expr}"
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # range and subquery windows
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(text) if not m.group().isspace()]
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and value in LABEL_LISTS and following == "(":
            i = tokens.index(("other", ")"), i)  # skip the label list (label names are not metrics)
        elif kind == "ident" and following != "(" and value not in AGGREGATIONS | LABEL_LISTS \
                and value.lower() not in KEYWORDS:
            names.add(value)
        i += 1
    return names


def substitute(expr: str, variables: dict[str, dict], durations: dict[str, str] = BUILTIN_DURATIONS) -> str:
    """Replace Grafana variables the way Grafana would render them for Prometheus (multi-value variables become
    regular expressions, which only a =~ or !~ matcher accepts)."""
    for match in re.finditer(r'(\w+)\s*(=|!=)\s*"\$\{?(\w+)', expr):
        variable = variables.get(match.group(3), {})
        assert not (variable.get("multi") or variable.get("includeAll")), \
            f"multi-value variable ${match.group(3)} needs a =~ or !~ matcher: {expr}"

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in durations:
            return durations[name]
        assert name in variables, f"unknown variable ${name} in {expr}"
        return ".*"

    return VARIABLE.sub(value, expr)


# dashboards


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    where: str  # panel id and refId, or variable name
    expr: str  # as written in the dashboard
    promql: str  # variables substituted

    @property
    def record(self) -> str:
        return re.sub(r"[^A-Za-z0-9_:]", "_", f"grafana:{self.dashboard}:{self.where}")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def all_panels(board: dict) -> Iterator[dict]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels of a collapsed row


def variables(board: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in board.get("templating", {}).get("list", [])}


def queries(board: dict, durations: dict[str, str] = BUILTIN_DURATIONS) -> list[Query]:
    """Every PromQL expression of a dashboard: panel targets and the selectors of its query variables."""
    found: list[Query] = []
    known = variables(board)
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            found.append(Query(board["uid"], f"panel{panel['id']}:{target['refId']}", target["expr"],
                               substitute(target["expr"], known, durations)))
    for name, variable in known.items():
        if variable["type"] != "query":
            continue
        text = variable.get("definition") or variable["query"]
        text = text["query"] if isinstance(text, dict) else text
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", text.strip())
        assert match, f"variable {name}: use label_values(<selector>, <label>), not {text}"
        found.append(Query(board["uid"], f"var:{name}", match.group(1), substitute(match.group(1), known, durations)))
    return found


def dashboard_metrics(path: Path) -> set[str]:
    return set().union(*(metric_names(query.promql) for query in queries(load(path))))


def by_uid(uid: str) -> Path:
    return next(path for path in DASHBOARDS if load(path)["uid"] == uid)


# tests


def test_the_dashboards_are_there() -> None:
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert {"jifang-fleet", "jifang-retention"} <= set(uids)
    assert len(uids) == len(set(uids)), uids


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = load(path)
    assert board.get("title") and board.get("uid") and board.get("description")
    assert board["schemaVersion"] >= 36
    assert board.get("id") is None, "exported dashboards carry no database id"
    known = variables(board)
    source = known.get("datasource")
    assert source and source["type"] == "datasource" and source["query"] == "prometheus"
    assert source["current"]["value"] == "prometheus", "default to the provisioned datasource's uid"
    panels = list(all_panels(board))
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), f"panel ids not unique: {ids}"
    for panel in panels:
        name = f"panel {panel['id']}"
        assert panel.get("title"), f"{name} has no title"
        assert panel.get("description"), f"{name} ({panel['title']}) has no description"
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["type"] == "prometheus" and panel["datasource"]["uid"] in DATASOURCE_UIDS, name
        targets = panel.get("targets")
        assert targets, f"{name} ({panel['title']}) has no query"
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), f"{name}: refIds not unique"
        for target in targets:
            assert target.get("expr", "").strip(), f"{name} {target['refId']}: empty expression"
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], name
    for variable in known.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] in DATASOURCE_UIDS, variable["name"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_panels_do_not_overlap(path: Path) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load(path)["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_expression_parses(tmp_path: Path) -> None:
    """promtool has no expression checker, but it parses every rule's expression: one recording rule each."""
    found = [query for path in DASHBOARDS for query in queries(load(path))]
    assert len(found) > 20
    records = [query.record for query in found]
    assert len(records) == len(set(records))
    rules = {"groups": [{"name": "grafana", "rules": [{"record": q.record, "expr": q.promql} for q in found]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    check = subprocess.run(["promtool", "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(found)} rules found" in check.stdout


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_expression_uses_exported_metrics(path: Path) -> None:
    exported = exported_names()
    for query in queries(load(path)):
        names = metric_names(query.promql)
        assert names, f"{query.where}: no metric in {query.expr}"
        assert names <= exported, f"{query.where}: {sorted(names - exported)} not exported by jifang ({query.expr})"


def test_dashboards_cover_the_exported_metrics() -> None:
    """Every recorder metric is on the fleet overview, every retention metric on the compliance dashboard."""
    for exporters, uid in (((RecorderMetrics,), "jifang-fleet"), ((RetentionMetrics,), "jifang-retention"),
                           ((RecognitionMetrics, DeliveryMetrics), "jifang-recognition")):
        missing = exported_names(*exporters) - dashboard_metrics(by_uid(uid))
        assert not missing, f"{uid} does not show {sorted(missing)}"


def test_a_provisioned_datasource_matches_the_dashboards() -> None:
    """Wherever deploy/ provisions Grafana, it provisions the Prometheus datasource the dashboards default to."""
    files = sorted(DEPLOY.glob("**/provisioning/datasources/*.y*ml"))
    assert files, "deploy/ provisions no Grafana datasource"
    for path in files:
        sources = yaml.safe_load(path.read_text())["datasources"]
        provisioned = {(s["name"], s.get("uid")) for s in sources if s["type"] == "prometheus"}
        assert ("Prometheus", "prometheus") in provisioned, path


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (camera) (rate(jifang_a_total{camera=~"x|y", b="{c}"}[5m]))', {"jifang_a_total"}),
    ("a / on (instance) group_left (tier) b", {"a", "b"}),
    ("count((x == 1) and on (instance) (y == 1)) or vector(0)", {"x", "y"}),
    ('histogram_quantile(0.9, sum without (pod) (rate(h_bucket[$__rate_interval])))', {"h_bucket"}),
    ('label_replace(m offset 1h30m, "dst", "$1", "src", "(.*)") > bool 1e3', {"m"}),
    ("max_over_time(deriv(g[10m])[1h:5m]) unless ignoring (job) sum(k) atan2 Inf", {"g", "k"}),
    ("topk(5, q) + quantile(0.5, r)", {"q", "r"}),
])
def test_metric_names_are_found(expr: str, names: set[str]) -> None:
    assert metric_names(expr.replace("$__rate_interval", "5m")) == names


def test_multi_value_variables_need_regex_matchers() -> None:
    known = {"camera": {"name": "camera", "multi": True}}
    assert substitute('x{camera=~"$camera"}[$__rate_interval]', known) == 'x{camera=~".*"}[5m]'
    with pytest.raises(AssertionError, match="needs a =~"):
        substitute('x{camera="$camera"}', known)
    with pytest.raises(AssertionError, match="unknown variable"):
        substitute('x{camera=~"$cam"}', known)


def test_prometheus_configuration_is_valid() -> None:
    check = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=PROMETHEUS, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"jifang-edge", "jifang-retention"}
    assert jobs["jifang-edge"]["static_configs"][0]["targets"] == ["127.0.0.1:9108"]
    assert jobs["jifang-retention"]["static_configs"][0]["targets"] == ["127.0.0.1:9109"]
    # jifang_retention_job_last_success_timestamp{job=...} must keep its own job label (rules.yml reads it)
    assert jobs["jifang-retention"]["honor_labels"] is True
