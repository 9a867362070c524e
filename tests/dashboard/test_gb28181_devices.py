"""The cameras page shows GB/T 28181 devices and channels to technicians: online state judged from the last
keepalive (not from a stored flag an agent that died cannot clear), the keepalive's time, and each channel's
media state from its camera point and its open gap."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.dashboard.i18n_text import visible_text
from tests.dashboard.world import (
    GB_DEVICE_GONE,
    GB_DEVICE_UP,
    GB_DOWN,
    GB_RECEIVING,
    GB_UNASSIGNED,
    GRID_A,
    World,
    add_gb28181_devices,
    login,
)


@pytest.fixture
def gb_world(world: World, registry_key: str) -> World:
    add_gb28181_devices(world, registry_key)
    return world


def test_api_reports_online_state_keepalive_and_media(gb_world: World, client: TestClient) -> None:
    login(client, "tech")
    devices = {d["id"]: d for d in client.get("/api/gb28181/devices").json()}
    up, gone = devices[GB_DEVICE_UP], devices[GB_DEVICE_GONE]
    assert up["online"] is True and up["keepalive_age_seconds"] < 60 and up["address"] == "127.0.0.1:5062"
    assert up["transport"] == "udp" and up["manufacturer"] == "海康威视"
    # its row still says online, but no keepalive for 15 minutes (> 60 s x 3): offline
    assert gone["online"] is False and gone["keepalive_age_seconds"] > 800
    media = {c["id"]: c for d in devices.values() for c in d["channels"]}
    assert media[GB_RECEIVING]["media"] == "receiving" and media[GB_RECEIVING]["grid"] == GRID_A
    assert media[GB_UNASSIGNED]["media"] == "unassigned" and media[GB_UNASSIGNED]["grid"] is None
    assert media[GB_DOWN]["media"] == "down" and media[GB_DOWN]["cause"] == "device_offline"
    assert media[GB_DOWN]["since"] is not None


@pytest.mark.parametrize("user", ["sup", "worker"])
def test_devices_are_for_technicians(gb_world: World, client: TestClient, user: str) -> None:
    login(client, user)
    assert client.get("/api/gb28181/devices").status_code == 403
    assert 'id="gb-devices"' not in client.get("/cameras").text


def test_cameras_page_shows_devices_and_channels_in_chinese(gb_world: World, client: TestClient) -> None:
    login(client, "tech")
    html = client.get("/cameras?lang=zh").text
    assert html.count('id="gb-devices"') == 1 and "<title>摄像机" in html
    assert f'data-device="{GB_DEVICE_UP}" data-online="true"' in html
    assert f'data-device="{GB_DEVICE_GONE}" data-online="false"' in html
    assert f'data-channel="{GB_UNASSIGNED}" data-media="unassigned"' in html
    assert f'data-channel="{GB_DOWN}" data-media="down"' in html
    text = visible_text(html)
    assert "国标 GB/T 28181 设备" in text and "最后心跳" in text and "+08:00" in text
    assert "正在接收" in text and "未分配 (不录像)" in text and "中断: 国标设备离线" in text and "离线" in text
    en = visible_text(client.get("/cameras?lang=en").text)
    assert "Last keepalive" in en and "receiving" in en and "unassigned (not recorded)" in en


def test_page_without_devices_says_how_to_add_one(world: World, client: TestClient) -> None:
    login(client, "admin")
    html = client.get("/cameras").text
    assert "尚无国标设备" in html and "jifang gb28181 add-device" in html
