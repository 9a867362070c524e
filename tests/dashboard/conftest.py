from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jifang.crypto import SecretBox
from tests.dashboard.world import World, build_world


@pytest.fixture
def registry_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = SecretBox.new_key()
    monkeypatch.setenv("JIFANG_REGISTRY_KEY", key)
    return key


@pytest.fixture
def world(tmp_path: Path, registry_key: str) -> World:
    return build_world(tmp_path, registry_key)


@pytest.fixture
def app(world: World):  # type: ignore[no-untyped-def]
    return world.app()


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client
