"""Security finding 4: behind the shipped proxy settings a client cannot choose its own address."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from jifang.cli.dashboard import trusted_proxies
from sqlalchemy import select
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from jifang.db.models import AuditEntry
from jifang.errors import ConfigError
from tests.dashboard.world import World, login_csrf

REPO_ROOT = Path(__file__).resolve().parents[2]

INGRESS = "10.244.3.7"  # an ingress controller pod, inside the range the manifest trusts


def shipped_trust() -> list[str]:
    docs = yaml.safe_load_all((REPO_ROOT / "deploy" / "k8s" / "dashboard.yaml").read_text())
    deployment = next(d for d in docs if d and d.get("kind") == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return trusted_proxies(args[args.index("--forwarded-allow-ips") + 1])


def test_trust_everyone_is_refused() -> None:
    for bad in ("*", "", "ingress.local"):
        with pytest.raises(ConfigError, match="forwarded-allow-ips"):
            trusted_proxies(bad)
    assert trusted_proxies("10.244.0.0/16, 127.0.0.1") == ["10.244.0.0/16", "127.0.0.1"]


def test_forged_forwarded_for_neither_dodges_the_limit_nor_reaches_the_log(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(ProxyHeadersMiddleware(app, trusted_hosts=shipped_trust()), client=(INGRESS, 40000))
    statuses = []
    for i in range(12):  # the client writes a new left-most hop each time; the ingress appends the real one
        forwarded = f"1.2.3.{i}, 203.0.113.9"
        response = client.post("/login", data={"username": "admin", "password": "wrong-password",
                                               "csrf_token": login_csrf(client)},
                               headers={"x-forwarded-for": forwarded})
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429] * 7
    client.post("/login", data={"username": "admin", "password": "x", "csrf_token": login_csrf(client)},
                headers={"x-forwarded-for": "1.2.3.4;purpose:forged"})
    with world.catalog.session() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")))
    assert {e.source_ip for e in entries} == {"203.0.113.9", ""}
    assert not any("forged" in f"{e.source_ip}{e.detail}{e.purpose}{e.target}" for e in entries)
