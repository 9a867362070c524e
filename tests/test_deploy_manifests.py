"""The deployment files (deploy/docker, deploy/compose, deploy/k8s) are valid, offline: Docker and a cluster are
not available here, so they are checked against the schemas their tools use and against each other.

- Compose files: the official Compose Specification JSON schema (tests/schemas/compose-spec.json), then the
  merged stack (base + 4-node MinIO override) structurally: images, ports, volumes, depends_on, variables.
- Kubernetes manifests: the Kubernetes OpenAPI schemas shipped by ``kubernetes-validate`` (strict: unknown
  fields fail), the Prometheus Operator CRD schemas in tests/schemas/prometheus-operator, then cross-references
  (selectors, ports, probes, ConfigMap and Secret names, volumes).
- Both jifang configurations parse with jifang's own schema and the environment they are given.
- The PrometheusRule holds exactly the groups of deploy/prometheus/rules.yml; the compose Prometheus
  configuration passes ``promtool check config`` with those rules.
- The Dockerfile is multi-stage, runs as a non-root user and passes hadolint (when installed).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from jifang.config import SecretRef, Settings, parse_settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
DOCKER = DEPLOY / "docker"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

COMPOSE_FILES = [COMPOSE / "docker-compose.yml", COMPOSE / "docker-compose.minio-distributed.yml"]
K8S_VERSIONS = ["1.29", kubernetes_validate.latest_version()]  # oldest supported here .. newest shipped
CONFIG_PATH = "/etc/jifang/jifang.yaml"
SPOOL_DIR = "/var/lib/jifang/spool"
MODELS_DIR = "/opt/jifang/models"
IMAGE_UID = 10001
DASHBOARDS_SOURCE = "../grafana"  # deploy/grafana: the dashboards Grafana provisions


def yaml_files() -> list[Path]:
    return sorted(p for d in (COMPOSE, K8S, DOCKER) for p in d.rglob("*") if p.suffix in (".yml", ".yaml"))


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no YAML document"


# --- compose: schema ----------------------------------------------------------------------------------------

def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path: Path) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in compose_validator().iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
    assert not errors, "\n".join(errors)


def test_compose_schema_rejects_what_docker_compose_would_reject() -> None:
    validator = compose_validator()
    base = yaml.safe_load(COMPOSE_FILES[0].read_text(encoding="utf-8"))
    for breakage in ({"imagee": "x"}, {"depends_on": {"postgres": {"condition": "healthy"}}},
                     {"healthcheck": {"tests": ["CMD", "true"]}}):
        broken = copy.deepcopy(base)
        broken["services"]["jifang-edge"].update(breakage)
        assert not validator.is_valid(broken), breakage


# --- compose: variables -------------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
                           r"|(?P<named>[A-Za-z_]\w*))")


def env_example() -> dict[str, str]:
    values = {}
    for line in (COMPOSE / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=VALUE: {line!r}"
            values[name.strip()] = value.strip()
    return values


def filled_env() -> dict[str, str]:
    """.env.example as an operator fills it: every empty value gets a (fake) secret."""
    return {name: value or f"test-{name.lower()}" for name, value in env_example().items()}


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else str(value)
        if op.endswith("?"):
            if unset:
                raise ValueError(f"required variable {name}: {arg}")
            return str(value)
        if op.endswith("+"):
            return "" if unset else arg
        return value or ""

    return INTERPOLATION.sub(replace, text)


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def variables_used(path: Path) -> set[str]:
    used = set()
    for text in strings(yaml.safe_load(path.read_text(encoding="utf-8"))):
        for match in INTERPOLATION.finditer(text):
            if not match["escaped"]:
                used.add(match["braced"] or match["named"])
    return used


def test_every_compose_variable_is_in_env_example_and_none_is_stale() -> None:
    used = set().union(*(variables_used(path) for path in COMPOSE_FILES))
    listed = set(env_example())
    assert used <= listed, f"missing from .env.example: {sorted(used - listed)}"
    assert listed <= used, f"in .env.example but used by no compose file: {sorted(listed - used)}"


def test_env_example_holds_no_secret() -> None:
    for name, value in env_example().items():
        if re.search(r"PASSWORD|SECRET|REGISTRY_KEY", name):
            assert value == "", f".env.example: {name} must be left empty for the operator to fill in"
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f".env.example: {name} carries a password"


def test_compose_refuses_to_start_without_the_secrets() -> None:
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        interpolate("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", env_example())


# --- compose: the merged stack ------------------------------------------------------------------------------

def volume_target(entry: str | dict[str, Any]) -> str:
    if isinstance(entry, dict):
        return entry["target"]
    parts = entry.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's merge rules for the keys these files use: mappings merge, command/entrypoint and
    healthcheck.test are replaced, volumes merge by container path, ports are appended."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key in merged and key == "volumes":
            by_target = {volume_target(v): v for v in merged[key]}
            by_target.update({volume_target(v): v for v in value})
            merged[key] = list(by_target.values())
        elif key in merged and key == "ports":
            merged[key] = merged[key] + [p for p in value if p not in merged[key]]
        elif key in merged and isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def compose_project(*paths: Path) -> dict[str, Any]:
    project: dict[str, Any] = {"services": {}, "volumes": {}}
    for path in paths:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, service in document.get("services", {}).items():
            current = project["services"].get(name)
            project["services"][name] = merge_service(current, service) if current else service
        project["volumes"].update(document.get("volumes") or {})
    return project


STACKS = {"single-node": COMPOSE_FILES[:1], "minio-distributed": COMPOSE_FILES}


def named_volume(entry: str | dict[str, Any]) -> str | None:
    if isinstance(entry, dict):
        return entry.get("source") if entry.get("type", "volume") == "volume" else None
    source = entry.split(":")[0]
    return None if source.startswith((".", "/", "~")) or ":" not in entry else source


def bind_source(entry: str | dict[str, Any]) -> str | None:
    if isinstance(entry, dict):
        return entry.get("source") if entry.get("type") == "bind" else None
    source = entry.split(":")[0]
    return source if source.startswith((".", "/")) else None


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_compose_stack_is_consistent(stack: str) -> None:
    project = compose_project(*STACKS[stack])
    services, volumes = project["services"], project["volumes"]
    env = filled_env()
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name}: neither image nor build"
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: port {port!r} must be a quoted string"
            published = interpolate(port, env)
            assert published.startswith("127.0.0.1:"), f"{name}: {port} publishes on every interface by default"
        for entry in service.get("volumes", []):
            volume = named_volume(entry)
            assert volume is None or volume in volumes, f"{name}: volume {volume} is not declared"
            source = bind_source(entry)
            if source:
                assert (COMPOSE / source).exists(), f"{name}: bind-mounted {source} does not exist"
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health: none"
            if spec["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} is one-shot: restart 'no'"
        if service.get("restart") != "no":
            assert "healthcheck" in service, f"{name}: no healthcheck"
        interpolate(json.dumps(service), env)  # every required variable is provided by a filled .env
    used = {named_volume(v) for service in services.values() for v in service.get("volumes", [])}
    if stack == "single-node":
        assert set(volumes) <= used, f"declared but unused volumes: {sorted(set(volumes) - used)}"
    for name in ("minio", "minio-init", "postgres", "mosquitto", "jifang-edge", "jifang-retention",
                 "prometheus", "grafana"):
        assert name in services, f"the stack lacks {name}"


def test_compose_build_points_at_the_dockerfile() -> None:
    services = compose_project(COMPOSE_FILES[0])["services"]
    for name in ("jifang-edge", "jifang-retention"):
        build = services[name]["build"]
        context = (COMPOSE / build["context"]).resolve()
        assert context == REPO, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).is_file()


def test_single_node_minio_starts_normally() -> None:
    minio = compose_project(COMPOSE_FILES[0])["services"]["minio"]
    assert minio["command"] == ["server", "/data", "--console-address", ":9001"]
    assert minio["image"].startswith("quay.io/minio/minio:RELEASE.")


def test_distributed_minio_has_four_nodes_with_two_drives_each() -> None:
    services = compose_project(*COMPOSE_FILES)["services"]
    for node in range(1, 5):
        service = services[f"minio{node}"]
        assert "http://minio{1...4}/data{1...2}" in service["command"]
        assert service["command"][0] == "server"
        assert sorted(volume_target(v) for v in service["volumes"]) == ["/data1", "/data2"]
        assert {named_volume(v) for v in service["volumes"]} == {f"minio{node}-data1", f"minio{node}-data2"}
        assert service["environment"]["MINIO_ROOT_USER"].startswith("${MINIO_ROOT_USER")
    balancer = services["minio"]  # jifang keeps its endpoint minio:9000
    assert balancer["image"].startswith("nginx:")
    assert {f"minio{n}" for n in range(1, 5)} <= set(balancer["depends_on"])
    assert not any(named_volume(v) == "minio-data" for v in balancer["volumes"]), "the balancer stores nothing"
    assert balancer["environment"]["MINIO_ROOT_PASSWORD"] == ""
    nginx = (COMPOSE / "minio-distributed" / "nginx.conf").read_text(encoding="utf-8")
    for node in range(1, 5):
        assert f"server minio{node}:9000" in nginx
    assert "listen 9000;" in nginx and "listen 9001;" in nginx


def command_option(command: list[str], option: str) -> str:
    assert option in command, f"{option} missing from {command}"
    return command[command.index(option) + 1]


def service_settings(service: dict[str, Any], config_file: Path) -> Settings:
    environment = {name: interpolate(str(value), filled_env()) for name, value in service["environment"].items()}
    settings = parse_settings(yaml.safe_load(config_file.read_text(encoding="utf-8")), str(config_file),
                              environ=environment)
    for ref in secret_refs(settings):
        assert ref.env in environment, f"{config_file.name} reads {ref.env}, which the container does not get"
    return settings


def secret_refs(settings: Settings) -> list[SecretRef]:
    refs = [settings.registry.key] + [c.password for c in settings.cameras if c.password]
    refs += [hook.secret for hook in settings.recognition.webhooks]
    if settings.storage.minio:
        refs += [settings.storage.minio.access_key, settings.storage.minio.secret_key]
    if settings.recognition.mqtt and settings.recognition.mqtt.password:
        refs.append(settings.recognition.mqtt.password)
    assert all(ref.env or ref.file for ref in refs)
    return [ref for ref in refs if ref.env]


def test_compose_jifang_configuration_parses_with_the_containers_environment() -> None:
    services = compose_project(COMPOSE_FILES[0])["services"]
    edge, retention = services["jifang-edge"], services["jifang-retention"]
    mounts = {volume_target(v): v for v in edge["volumes"]}
    assert command_option(edge["command"], "--config") == CONFIG_PATH
    assert command_option(retention["command"], "--config") == CONFIG_PATH
    assert mounts[CONFIG_PATH].startswith("./jifang.yaml:")
    settings = service_settings(edge, COMPOSE / "jifang.yaml")
    service_settings(retention, COMPOSE / "jifang.yaml")
    assert settings.database.url.startswith("postgresql+psycopg2://jifang@postgres:5432/")
    assert settings.storage.kind == "minio" and settings.storage.minio is not None
    assert settings.storage.minio.endpoint == "minio:9000" and settings.storage.minio.secure is False
    assert settings.metrics.host == "0.0.0.0"
    assert str(settings.recorder.spool_dir) in mounts, "the spool must be a volume"
    assert named_volume(mounts[str(settings.recorder.spool_dir)]) == "edge-spool"
    assert edge["stop_grace_period"] == "120s"
    assert str(settings.recognition.models_dir) == MODELS_DIR
    mqtt = settings.recognition.mqtt
    assert mqtt is not None and mqtt.host == "mosquitto" and mqtt.port == 1883
    assert mqtt.username == interpolate("${MQTT_USERNAME:-jifang}", filled_env()), "the broker's own account"
    assert "PGPASSWORD" in edge["environment"], "the database URL carries no password: libpq reads PGPASSWORD"


def test_compose_prometheus_scrapes_what_jifang_serves() -> None:
    services = compose_project(COMPOSE_FILES[0])["services"]
    settings = parse_settings(yaml.safe_load((COMPOSE / "jifang.yaml").read_text(encoding="utf-8")), "jifang.yaml",
                              environ={})
    retention_port = int(command_option(services["jifang-retention"]["command"], "--metrics-port"))
    assert command_option(services["jifang-retention"]["command"], "--metrics-host") == "0.0.0.0"
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets[job["job_name"]] = (sd["names"], sd["port"])
    assert targets["jifang-edge"] == (["jifang-edge"], settings.metrics.port)
    # jobs that need honor_labels in the reference configuration (retention: its metrics carry a "job" label)
    reference = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    honoured = {job["job_name"] for job in reference["scrape_configs"] if job.get("honor_labels")}
    assert "jifang-retention" in honoured
    for job in config["scrape_configs"]:
        assert bool(job.get("honor_labels")) == (job["job_name"] in honoured), job["job_name"]
    assert targets["jifang-retention"] == (["jifang-retention"], retention_port)
    mounts = {volume_target(v): v.split(":")[0] for v in services["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert mounts[f"/etc/prometheus/{rule_file}"] == "../prometheus/rules.yml"


def test_compose_prometheus_configuration_passes_promtool(tmp_path: Path) -> None:
    shutil.copy(COMPOSE / "prometheus.yml", tmp_path / "prometheus.yml")
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text(encoding="utf-8"))
    for rule_file in config["rule_files"]:
        (tmp_path / rule_file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEPLOY / "prometheus" / "rules.yml", tmp_path / rule_file)
    check = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    alerts = sum(len(group["rules"]) for group in yaml.safe_load(
        (DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))["groups"])
    assert f"{alerts} rules found" in check.stdout + check.stderr


def test_grafana_provisioning_matches_the_stack() -> None:
    grafana = compose_project(COMPOSE_FILES[0])["services"]["grafana"]
    mounts = {volume_target(v): v.split(":")[0] for v in grafana["volumes"]}
    provisioning = COMPOSE / "grafana" / "provisioning"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert source["uid"] == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards" / "jifang.yml").read_text(encoding="utf-8"))
    (provider,) = providers["providers"]
    assert mounts[provider["options"]["path"]] == DASHBOARDS_SOURCE
    dashboards = sorted((COMPOSE / DASHBOARDS_SOURCE).glob("*.json"))
    assert dashboards, "no dashboard to provision"
    for path in dashboards:  # every panel reaches the provisioned datasource (directly or through a variable)
        text = path.read_text(encoding="utf-8")
        variables = {v["name"]: v for v in json.loads(text).get("templating", {}).get("list", [])}
        for uid in set(re.findall(r'"datasource":\s*\{[^}]*"uid":\s*"([^"]+)"', text)):
            if uid.startswith("${"):
                variable = variables[uid[2:-1]]
                assert variable["type"] == "datasource" and variable["query"] == source["type"], path.name
            else:
                assert uid in (source["uid"], "-- Grafana --"), f"{path.name}: unknown datasource {uid}"


def test_mosquitto_listens_on_the_network_and_requires_a_password() -> None:
    lines = {line.split()[0]: line.split()[1:] for line in
             (COMPOSE / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")}
    assert lines["listener"] == ["1883"]
    assert lines["allow_anonymous"] == ["false"]
    assert "password_file" in lines


# --- Dockerfile ---------------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in (DOCKER / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        pending += line
        if pending.strip():
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return instructions


def test_dockerfile_is_multi_stage_non_root_and_runs_jifang() -> None:
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    froms = [instructions[i][1] for i in stages]
    assert re.search(r"\bAS builder$", froms[0], re.IGNORECASE)
    runtime_base = froms[-1].split()[0]
    runtime_base = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], runtime_base)
    assert runtime_base.startswith("python:3.11-slim-bookworm")
    runtime = instructions[stages[-1]:]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "the runtime stage has no USER line: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user == str(IMAGE_UID)
    final = {keyword: rest for keyword, rest in runtime}
    assert json.loads(final["ENTRYPOINT"]) == ["jifang"]
    assert json.loads(final["CMD"]) == ["edge", "run", "--config", CONFIG_PATH]
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert "/metrics" in final["HEALTHCHECK"] or "JIFANG_HEALTHCHECK_URL" in final["HEALTHCHECK"]
    assert "9108" in final["ENV"] and "9108" in final["EXPOSE"]
    assert any(k == "RUN" and re.search(r"apt-get install .*\bffmpeg\b", r) for k, r in runtime), "no ffmpeg"
    assert any(k == "RUN" and "pip wheel" in r for k, r in instructions[: stages[-1]]), "builder makes wheels"
    # recognition models fetched at build, in their own stage, copied to where the configurations look
    assert any(re.search(r"\bAS models$", f, re.IGNORECASE) for f in froms)
    assert any(k == "RUN" and "jifang models fetch --dir /models" in r for k, r in instructions[: stages[-1]])
    assert ("COPY", f"--from=models /models {MODELS_DIR}") in runtime
    assert f"JIFANG_MODELS_DIR={MODELS_DIR}" in final["ENV"]
    # face recognition's libraries: the faces extra, and insightface beside it without its opencv-python
    builder = instructions[: stages[-1]]
    assert any(k == "RUN" and '".[faces]"' in r and re.search(r"--no-deps .*insightface==", r) for k, r in builder)
    assert any(k == "RUN" and '"jifang[faces]"' in r and "--no-deps" in r and "import insightface.app" in r
               for k, r in runtime), "the image cannot run face recognition"


def test_dockerfile_copies_every_package_and_the_ignore_file_lets_them_through() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert {"jifang", "edge", "recorder", "cli"} <= names
    copies = {source for keyword, rest in dockerfile_instructions() if keyword == "COPY" and "--from" not in rest
              for source in rest.split()[:-1] if not source.startswith("--")}
    assert names <= copies, f"packages not copied into the image: {sorted(names - copies)}"
    for source in copies:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    allowed = {line[1:].rstrip("/") for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert copies <= allowed, f"excluded by Dockerfile.dockerignore: {sorted(copies - allowed)}"
    assert "docker build -f deploy/docker/Dockerfile ." in (DOCKER / "README.md").read_text(encoding="utf-8")


def hadolint() -> str | None:
    local = REPO / ".venv" / "bin" / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([str(hadolint()), "--no-color", str(DOCKER / "Dockerfile")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Kubernetes ---------------------------------------------------------------------------------------------

def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))


def k8s_resources() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"] for doc in load_all(K8S / name)]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in k8s_resources() if doc["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in by_kind(kind) if doc["metadata"]["name"] == name]
    return found


CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
               ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json"}


def validate_k8s(document: dict[str, Any]) -> None:
    crd = CRD_SCHEMAS.get((document["apiVersion"], document["kind"]))
    if crd:
        schema = json.loads((SCHEMAS / "prometheus-operator" / crd).read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(document)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(document, version, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert "secret.example.yaml" not in listed, "the Secret template must not be applied"
    assert listed == present - {"secret.example.yaml"}
    assert kustomization()["namespace"] == "jifang"


K8S_DOCUMENTS = [(path, index, doc) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
                 for index, doc in enumerate(load_all(path))]


@pytest.mark.parametrize(("path", "index", "document"), K8S_DOCUMENTS,
                         ids=[f"{p.name}#{i}" for p, i, _ in K8S_DOCUMENTS])
def test_kubernetes_manifest_matches_its_schema(path: Path, index: int, document: dict[str, Any]) -> None:
    assert document.get("apiVersion") and document.get("kind") and document.get("metadata", {}).get("name")
    namespace = document["metadata"].get("namespace")
    assert namespace in (None, "jifang"), f"{path.name}: namespace {namespace}"
    validate_k8s(document)


def test_kubernetes_schemas_reject_a_misspelt_field() -> None:
    edge = copy.deepcopy(one("StatefulSet", "jifang-edge"))
    edge["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(edge)
    monitor = copy.deepcopy(one("ServiceMonitor", "jifang-edge"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(monitor)


def workloads() -> list[dict[str, Any]]:
    return by_kind("StatefulSet") + by_kind("Deployment")


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_kubernetes_selectors_ports_and_probes_agree() -> None:
    for workload in workloads():
        name = workload["metadata"]["name"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert matches(workload["spec"]["selector"]["matchLabels"], labels), f"{name}: selector misses its pods"
        for container in pod(workload)["containers"]:
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                check = container[probe]["httpGet"]
                assert check["path"] in ("/metrics", "/healthz"), f"{name}: {probe} path"
                assert check["port"] in ports or check["port"] in ports.values(), f"{name}: {probe} port"
            assert container["resources"]["requests"] and container["resources"]["limits"], f"{name}: resources"
    for service in by_kind("Service"):
        selected = [w for w in workloads() if matches(service["spec"]["selector"],
                                                      w["spec"]["template"]["metadata"]["labels"])]
        assert len(selected) == 1, f"Service {service['metadata']['name']} selects {len(selected)} workloads"
        ports = {p["name"]: p["containerPort"] for c in pod(selected[0])["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {service['metadata']['name']}: no port {port['targetPort']}"
            assert port["port"] == ports[port["targetPort"]]
    for budget in by_kind("PodDisruptionBudget"):
        assert any(matches(budget["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
                   for w in workloads())
    monitored = set()
    for monitor in by_kind("ServiceMonitor"):
        assert "jifang" in monitor["spec"]["namespaceSelector"]["matchNames"]
        (service,) = [s for s in by_kind("Service") if matches(monitor["spec"]["selector"]["matchLabels"],
                                                               s["metadata"]["labels"])]
        monitored.add(service["metadata"]["name"])
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
            assert endpoint["path"] == "/metrics"
            # retention metrics carry their own "job" label (see deploy/prometheus/prometheus.yml)
            assert endpoint.get("honorLabels", False) == (service["metadata"]["name"] == "jifang-retention")
    assert monitored == {s["metadata"]["name"] for s in by_kind("Service")}, "every metrics Service is scraped"


def test_kubernetes_references_exist() -> None:
    configmaps = {c["metadata"]["name"] for c in by_kind("ConfigMap")}
    accounts = {a["metadata"]["name"] for a in by_kind("ServiceAccount")}
    (template,) = load_all(K8S / "secret.example.yaml")
    assert template["kind"] == "Secret"
    for workload in workloads():
        spec = pod(workload)
        assert spec["serviceAccountName"] in accounts
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
                keys = set(one("ConfigMap", volume["configMap"]["name"])["data"])
                assert {item["key"] for item in volume["configMap"]["items"]} <= keys
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert source["secretRef"]["name"] == template["metadata"]["name"], "undocumented Secret"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                assert ref is None or ref["name"] == template["metadata"]["name"]
    for workload in by_kind("StatefulSet"):
        service = one("Service", workload["spec"]["serviceName"])
        assert service["spec"].get("clusterIP") == "None", "a StatefulSet's governing Service is headless"


def configmap_settings(container: dict[str, Any]) -> Settings:
    environ = {env["name"]: env["value"] for env in container.get("env", []) if "value" in env}
    text = one("ConfigMap", "jifang-config")["data"]["jifang.yaml"]
    settings = parse_settings(yaml.safe_load(text), "ConfigMap jifang-config: jifang.yaml", environ=environ)
    (template,) = load_all(K8S / "secret.example.yaml")
    for ref in secret_refs(settings):
        assert ref.env in template["stringData"], f"the ConfigMap reads {ref.env}: not in secret.example.yaml"
    url = make_url(settings.database.url)
    if url.get_backend_name() == "postgresql":
        assert url.password is None, "no password in the ConfigMap"
        assert "PGPASSWORD" in template["stringData"], "the database URL carries no password: PGPASSWORD"
    return settings


def mount_of(container: dict[str, Any], path: str) -> dict[str, Any]:
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    return mount


def check_pod_security(workload: dict[str, Any]) -> dict[str, Any]:
    spec = pod(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == IMAGE_UID
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert mount_of(container, "/tmp")
    config = mount_of(container, str(Path(CONFIG_PATH).parent))
    assert config["readOnly"] is True
    return container


def test_edge_statefulset_scales_out_through_leases_and_keeps_its_spool() -> None:
    edge = one("StatefulSet", "jifang-edge")
    container = check_pod_security(edge)
    settings = configmap_settings(container)
    assert edge["spec"]["replicas"] == 3
    assert getattr(settings.recorder, "lease_seconds", None), "several agents need recorder.lease_seconds"
    assert container["command"] + container["args"] == ["jifang", "edge", "run", "--config", CONFIG_PATH]
    (agent_id,) = [env for env in container["env"] if env["name"] == "JIFANG_AGENT_ID"]
    assert agent_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod(edge)["terminationGracePeriodSeconds"] >= 120
    spool = mount_of(container, str(settings.recorder.spool_dir))
    assert str(settings.recorder.spool_dir) == SPOOL_DIR
    claims = {claim["metadata"]["name"] for claim in edge["spec"]["volumeClaimTemplates"]}
    assert spool["name"] in claims, "the spool must be a PersistentVolumeClaim that survives restarts"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == settings.metrics.port and settings.metrics.host == "0.0.0.0"
    assert str(settings.recognition.models_dir) == MODELS_DIR


def test_retention_deployment_runs_two_replicas_with_metrics_on_its_port() -> None:
    retention = one("Deployment", "jifang-retention")
    container = check_pod_security(retention)
    configmap_settings(container)
    assert retention["spec"]["replicas"] == 2
    command = container["command"] + container["args"]
    assert command[:3] == ["jifang", "retention", "run"]
    assert command_option(command, "--config") == CONFIG_PATH
    assert command_option(command, "--metrics-host") == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(command_option(command, "--metrics-port")) == ports["metrics"]


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_prometheusrule", K8S / "gen_prometheusrule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheusrule_holds_exactly_the_alert_rules() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    assert one("PrometheusRule", "jifang")["spec"]["groups"] == rules["groups"]
    expected = generator().render((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    assert (K8S / "prometheusrule.yaml").read_text(encoding="utf-8") == expected, \
        "prometheusrule.yaml is stale: python deploy/k8s/gen_prometheusrule.py"


