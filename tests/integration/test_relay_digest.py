"""The credential relay answers a Digest challenge (what most IP cameras ask) and keeps the recorder's
specific errors: a wrong password is still a 401, a missing path a 404, a dead camera 'unreachable'."""

from __future__ import annotations

import pytest
from jifang.recorder.ffmpeg import check_stream, url_with_credentials
from jifang.sim.camera import SimCamera

from jifang.errors import CameraStreamNotFoundError, CameraUnauthorizedError, CameraUnreachableError

pytestmark = pytest.mark.integration


def test_digest_camera_through_the_relay() -> None:
    with SimCamera(path="cam", user="admin", password="Dig3st!pw", auth="digest") as camera:
        check_stream("ffprobe", "c1", url_with_credentials(camera.url, "admin", "Dig3st!pw"))
        with pytest.raises(CameraUnauthorizedError):
            check_stream("ffprobe", "c1", url_with_credentials(camera.url, "admin", "wrong"))
        with pytest.raises(CameraStreamNotFoundError):
            check_stream("ffprobe", "c1", url_with_credentials(camera.url.replace("/cam", "/nope"), "admin",
                                                               "Dig3st!pw"))
        url = camera.url
    with pytest.raises(CameraUnreachableError, match="Connection refused"):
        check_stream("ffprobe", "c1", url_with_credentials(url, "admin", "Dig3st!pw"))
