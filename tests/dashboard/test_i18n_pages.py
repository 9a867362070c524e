"""Every page, as every role, in Chinese and in English: no untranslated UI word and no raw stored code
(camera status, gap cause, role, audit action, media state) reaches a user, nor in the printed retention report.
Times carry the site's offset."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from jifang.crypto import SecretBox
from jifang.domain import GapCause
from jifang.registry import Registry
from tests.dashboard.i18n_text import problems, visible_text
from tests.dashboard.world import CAMERA_A, GRID_A, NOW, ROLES, World, add_gb28181_devices, login


@pytest.fixture
def lived_in(world: World, registry_key: str) -> World:
    """The small world plus what the pages must translate: a camera status, gaps with causes and the
    recorder's fixed detail sentence, audit entries, GB/T 28181 devices and channels in every media state."""
    registry = Registry(world.catalog, SecretBox(registry_key))
    registry.set_status(CAMERA_A, "clock_skew", "", NOW)
    world.catalog.add_gap(CAMERA_A, NOW - timedelta(hours=1, minutes=30), NOW - timedelta(hours=1),
                          GapCause.NOT_RECORDED, "no recorder was running for this camera")
    world.catalog.open_gap(CAMERA_A, NOW - timedelta(minutes=5), GapCause.CAMERA_OFFLINE, "")
    add_gb28181_devices(world, registry_key)
    return world


PAGES = (
    "/cameras", f"/cameras/{CAMERA_A}/live", f"/cameras/{CAMERA_A}", "/cameras/new", "/incidents",
    "/incidents/{incident}", "/retention", f"/retention/points/{CAMERA_A}", f"/footage/{CAMERA_A}",
    "/audit", "/incidents/999999", "/retention/report",
)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_as_every_role_is_translated(lived_in: World, client: TestClient, lang: str) -> None:
    incident = lived_in.incidents[GRID_A]
    seen: dict[str, int] = {}
    failures = []
    for user in ROLES:
        client.cookies.clear()
        page = client.get(f"/login?lang={lang}")
        failures += [f"{lang} /login: {p}" for p in problems(visible_text(page.text), lang)]
        login(client, user)
        client.get(f"/cameras?lang={lang}")  # sets the language cookie
        for path in PAGES:
            url = path.format(incident=incident)
            response = client.get(url)
            assert response.status_code in (200, 403, 404), (user, url, response.status_code)
            seen[url] = seen.get(url, 0) + (response.status_code == 200)
            text = visible_text(response.text)
            failures += [f"{lang} {user} {url}: {p}" for p in problems(text, lang)]
            if response.status_code == 200 and url.endswith("/live"):
                assert "+08:00" in text, (user, url)  # site-local times with their offset
    assert not failures, "\n".join(failures)
    must_render = ("/cameras", f"/incidents/{incident}", f"/cameras/{CAMERA_A}/live", "/retention/report")
    assert all(seen[p] for p in must_render), seen
    assert seen["/incidents/999999"] == 0


def test_the_pages_show_the_translations(lived_in: World, client: TestClient) -> None:
    login(client, "admin")
    zh = visible_text(client.get(f"/cameras/{CAMERA_A}/live?lang=zh").text)
    assert "时钟偏差" in zh and "无记录且无原因" in zh and "该摄像机没有运行中的录像进程" in zh and "摄像机离线" in zh
    en = visible_text(client.get(f"/cameras/{CAMERA_A}/live?lang=en").text)
    assert "clock skew" in en and "not recorded" in en and "clock_skew" not in en
    assert "管理员" in visible_text(client.get("/cameras?lang=zh").text)
