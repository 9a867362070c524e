"""The HLS playlist of a footage grant: version 7, fMP4, an EXT-X-MAP per segment; ffmpeg's HLS demuxer plays it."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from jifang.dashboard.footage import split_fragmented

from tests.dashboard.world import CAMERA_A, NOW, World, login


def test_playlist_lists_the_grants_segments_and_ffmpeg_decodes_it(client: TestClient, world: World,
                                                                   tmp_path: Path) -> None:
    token = login(client, "worker")
    grant = client.post(f"/api/footage/{CAMERA_A}", headers={"x-csrf-token": token},
                        json={"start": (NOW - timedelta(minutes=5)).isoformat(), "end": NOW.isoformat(),
                              "purpose": "案件调查"}).json()
    response = client.get(grant["playlist"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.apple.mpegurl"
    text = response.text
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n") and text.rstrip().endswith("#EXT-X-ENDLIST")
    segment = world.segments[CAMERA_A]
    assert f'#EXT-X-MAP:URI="segments/{segment}/init.mp4"' in text and f"segments/{segment}/media.m4s" in text
    base = grant["playlist"].rsplit("/", 1)[0]
    whole = client.get(f"{base}/segments/{segment}").content
    init = client.get(f"{base}/segments/{segment}/init.mp4").content
    media = client.get(f"{base}/segments/{segment}/media.m4s").content
    assert init + media == whole and b"moov" in init and media[4:8] == b"moof"
    folder = tmp_path / "hls"
    (folder / "segments" / str(segment)).mkdir(parents=True)
    (folder / "playlist.m3u8").write_text(text)
    (folder / "segments" / str(segment) / "init.mp4").write_bytes(init)
    (folder / "segments" / str(segment) / "media.m4s").write_bytes(media)
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(folder / "playlist.m3u8"), "-f", "null",
                           "-"], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    other = TestClient(client.app)
    login(other, "sup")  # another user cannot use the worker's grant
    assert other.get(grant["playlist"]).status_code == 404


def test_split_rejects_unfragmented_files() -> None:
    assert split_fragmented(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00") is None
    assert split_fragmented(b"") is None
