"""Every page, as every role, in Chinese and in English: no untranslated UI word and no raw stored code
(camera status, gap cause, role, audit action) reaches a user. Times carry the site's offset."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from jifang.dashboard.i18n import ENUMS, TEXT

from jifang.crypto import SecretBox
from jifang.domain import GapCause
from jifang.registry import Registry
from tests.dashboard.world import CAMERA_A, GRID_A, NOW, ROLES, World, login

CODE_KINDS = ("status", "cause", "role", "action")
# Words that are the same in Chinese UIs: protocol and product names, the language switch, GB/T 31000 codes, and
# the test world's user and actor names (data, not UI text).
ALLOWED_LATIN = {"ONVIF", "HLS", "RTSP", "English", "jifang", "CaseType", "test", *ROLES}


class _Visible(HTMLParser):
    """Text a user reads: text nodes (not scripts/styles) and the title, alt and placeholder attributes. Cells
    marked `verbatim` (the audit log's target and detail, shown exactly as recorded) are left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style") or (tag == "td" and "verbatim" in (dict(attrs).get("class") or "")):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "alt", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") or (tag == "td" and self._skip):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(parser.parts)


def problems(text: str, lang: str) -> list[str]:
    found = []
    words = set(re.findall(r"[A-Za-z][A-Za-z_]+", text))
    codes = {code for kind in CODE_KINDS for code in ENUMS[kind]} - set(ROLES)  # user names are data
    found += [f"raw code {w!r}" for w in sorted(words & codes) if "_" in w or lang == "zh"]
    found += [f"untranslated key {w!r}" for w in sorted(words & set(TEXT)) if "_" in w]
    if lang == "zh":
        latin = {w for w in words if len(w) >= 3 and w not in ALLOWED_LATIN}
        found += [f"English word {w!r}" for w in sorted(latin)]
    return found


@pytest.fixture
def lived_in(world: World, registry_key: str) -> World:
    """The small world plus what the pages must translate: a camera status, gaps with causes and the
    recorder's fixed detail sentence, audit entries."""
    registry = Registry(world.catalog, SecretBox(registry_key))
    registry.set_status(CAMERA_A, "clock_skew", "", NOW)
    world.catalog.add_gap(CAMERA_A, NOW - timedelta(hours=1, minutes=30), NOW - timedelta(hours=1),
                          GapCause.NOT_RECORDED, "no recorder was running for this camera")
    world.catalog.open_gap(CAMERA_A, NOW - timedelta(minutes=5), GapCause.CAMERA_OFFLINE, "")
    return world


PAGES = (
    "/cameras", f"/cameras/{CAMERA_A}/live", f"/cameras/{CAMERA_A}", "/cameras/new", "/incidents",
    "/incidents/{incident}", "/retention", f"/retention/points/{CAMERA_A}", f"/footage/{CAMERA_A}",
    "/audit", "/incidents/999999",
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
    assert all(seen[p] for p in ("/cameras", f"/incidents/{incident}", f"/cameras/{CAMERA_A}/live"))
    assert seen["/incidents/999999"] == 0


def test_the_pages_show_the_translations(lived_in: World, client: TestClient) -> None:
    login(client, "admin")
    zh = visible_text(client.get(f"/cameras/{CAMERA_A}/live?lang=zh").text)
    assert "时钟偏差" in zh and "无记录且无原因" in zh and "该摄像机没有运行中的录像进程" in zh and "摄像机离线" in zh
    en = visible_text(client.get(f"/cameras/{CAMERA_A}/live?lang=en").text)
    assert "clock skew" in en and "not recorded" in en and "clock_skew" not in en
    assert "管理员" in visible_text(client.get("/cameras?lang=zh").text)
