"""The configuration schema and the CLI's answer to bad input: one line, exit code 2, nothing written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jifang.config import load_settings, parse_settings
from jifang.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
GRID = "331002001001001"


def base_config(tmp_path: Path, **camera_overrides: object) -> dict:
    camera = {"id": "33100200001320000001", "name": "east gate", "grid": GRID, "tier": "key",
              "rtsp_url": "rtsp://127.0.0.1:8554/cam1"}
    camera.update(camera_overrides)
    return {
        "version": 1,
        "database": {"url": f"sqlite:///{tmp_path / 'data' / 'jifang.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "data" / "store")},
        "recorder": {"spool_dir": str(tmp_path / "data" / "spool")},
        "grids": [{"code": GRID, "name": "示范网格", "type": "城市社区"}],
        "cameras": [camera],
    }


def test_documented_example_is_valid() -> None:
    settings = load_settings(REPO / "configs" / "jifang.yaml", environ={})
    assert [c.tier for c in settings.cameras] == ["key", "important"]
    assert settings.cameras[0].password is not None and settings.cameras[0].password.env


def test_env_overrides_nested_scalars_and_ignores_secrets(tmp_path: Path) -> None:
    env = {"JIFANG_RECORDER__SEGMENT_SECONDS": "5", "JIFANG_DATABASE__URL": "sqlite:///x.db",
           "JIFANG_MINIO_SECRET_KEY": "not-an-override"}
    settings = parse_settings(base_config(tmp_path), "cfg", environ=env)
    assert settings.recorder.segment_seconds == 5
    assert settings.database.url == "sqlite:///x.db"


def test_secret_refs_read_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("CAM_PW", "from-env")
    settings = parse_settings(base_config(tmp_path, username="admin", password={"file": str(secret)}), "cfg")
    assert settings.cameras[0].password.read("pw") == "s3cret"
    settings = parse_settings(base_config(tmp_path, username="admin", password={"env": "CAM_PW"}), "cfg")
    assert settings.cameras[0].password.read("pw") == "from-env"
    settings = parse_settings(base_config(tmp_path, username="admin", password={"env": "UNSET_VAR_X"}), "cfg")
    with pytest.raises(ConfigError, match="UNSET_VAR_X is not set"):
        settings.cameras[0].password.read("camera password")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["cameras"][0].update(tier="vip"), r"cameras\[0\]\.tier: Input should be 'key', 'important' or"),
        (lambda c: c["cameras"][0].update(id="3310020000132000001"),
         r"cameras\[0\]\.id: must be 20 digits .* 19 digits"),
        (lambda c: c["cameras"][0].update(id="33100200001990000001"), r"device type code 199"),
        (lambda c: c["cameras"][0].update(rtsp_url="rtsp:///cam1"), r"rtsp_url: has no host"),
        (lambda c: c["cameras"][0].update(rtsp_url="http://h/cam1"), r"rtsp_url: must be an rtsp://"),
        (lambda c: c["cameras"][0].update(rtsp_url="rtsp://admin:pw@h/cam1"), r"must not contain a password"),
        (lambda c: c["cameras"].append(dict(c["cameras"][0])), r"duplicate camera ID 33100200001320000001"),
        (lambda c: c["cameras"][0].update(grid="999"), r"grid '999' is not declared"),
        (lambda c: c["cameras"][0].update(colour="red"), r"cameras\[0\]\.colour: Extra inputs are not permitted"),
        (lambda c: c["storage"].update(kind="minio"), r"the minio section .* is missing"),
        (lambda c: c.update(version=2), r"version: Input should be 1"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    config = base_config(tmp_path)
    mutate(config)
    with pytest.raises(ConfigError, match=message) as caught:
        parse_settings(config, "site.yaml", environ={})
    assert str(caught.value).startswith("site.yaml: ")
    assert "\n" not in str(caught.value)


def jifang(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jifang.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cameras: [\n  {id: 1", "malformed YAML at line"),
        (None, "cameras[0].tier"),
    ],
)
def test_edge_run_rejects_bad_config_with_exit_2_and_writes_nothing(tmp_path: Path, content: str | None,
                                                                     message: str) -> None:
    path = tmp_path / "bad.yaml"
    if content is None:
        config = base_config(tmp_path, tier="vip")
        content = yaml.safe_dump(config, allow_unicode=True)
    path.write_text(content)
    done = jifang("edge", "run", "--config", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jifang: error: ") and message in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    done = jifang("config", "check", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "configuration file not found" in done.stderr


def test_config_check_accepts_the_example() -> None:
    done = jifang("config", "check", "configs/jifang.yaml")
    assert done.returncode == 0, done.stderr
    assert "valid (1 grids, 2 cameras, filesystem storage)" in done.stdout


def test_configuration_reference_is_current() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_config_docs", REPO / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert current == module.render(), "run: .venv/bin/python scripts/gen_config_docs.py"


def test_errors_never_echo_secrets(tmp_path: Path) -> None:
    config = base_config(tmp_path, rtsp_url="rtsp://admin:S3cretPW@10.0.0.1/x")
    with pytest.raises(ConfigError) as caught:
        parse_settings(config, "site.yaml", environ={})
    assert "S3cretPW" not in str(caught.value)
    config = base_config(tmp_path)
    config["database"] = {"url": "mysql://admin:DbPw@h/db"}
    with pytest.raises(ConfigError) as caught:
        parse_settings(config, "site.yaml", environ={})
    assert "DbPw" not in str(caught.value) and "mysql://***@h/db" in str(caught.value)
    config = base_config(tmp_path)
    config["storage"] = {"kind": "minio", "minio": {"endpoint": "h:9000", "secret_key": "TopSecretKey"}}
    with pytest.raises(ConfigError) as caught:
        parse_settings(config, "site.yaml", environ={})
    assert "secret_key" in str(caught.value) and "TopSecretKey" not in str(caught.value)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"database": {"url": "not a url"}}, "database.url: is not a database URL"),
        ({"database": {"url": "postgresql://u:pw@h:port/db"}}, "database.url: is not a database URL"),
        ({"database": {"url": "mysql://h/db"}}, "'mysql' is not supported"),
        ({"storage": {"kind": "minio", "minio": {"endpoint": "http://h:9000"}}}, "storage.minio.endpoint"),
    ],
)
def test_unusable_urls_are_config_errors(tmp_path: Path, section: dict, message: str) -> None:
    config = base_config(tmp_path)
    config.update(section)
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_settings(config, "site.yaml", environ={})


def test_non_utf8_config_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes("site: 椒江\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_settings(path, environ={})
