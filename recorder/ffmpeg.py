"""The ffmpeg command lines of the recorder and the reading of ffmpeg's diagnostics.

Recording copies the camera's H.264/H.265 (``-c copy``) into fragmented MP4 segments (a fragmented file stays
readable after SIGKILL). Packets are stamped with the wall clock on arrival
(``-use_wallclock_as_timestamps``), so the input's ``start:`` printed by ffmpeg is the capture time of the
first packet, and the segment list's relative times give every segment's exact capture interval.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from jifang.recorder.relay import child_env, shared_relay, split_credentials

from jifang.errors import (
    CameraError,
    CameraStreamNotFoundError,
    CameraUnauthorizedError,
    CameraUnreachableError,
)

SEGMENT_LIST = "segments.csv"
SEGMENT_PATTERN = "seg-%06d.mp4"
INPUT_START = re.compile(r"Duration: .*?, start: (-?\d+\.\d+)")


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    if not username:
        return url
    parts = urlsplit(url)
    netloc = quote(username, safe="") + (":" + quote(password, safe="") if password else "") + "@" + parts.netloc
    return urlunsplit(parts._replace(netloc=netloc))


def redact(text: str) -> str:
    """Remove credentials from any URL in ``text`` before it is logged or shown."""
    return re.sub(r"(rtsps?://)[^/@\s]+@", r"\1***@", text)


def input_args(url: str, timeout_s: float = 5.0) -> list[str]:
    return [
        "-rtsp_transport", "tcp",
        "-timeout", str(int(timeout_s * 1_000_000)),  # without it a frozen camera hangs ffmpeg forever
        "-analyzeduration", "1000000", "-probesize", "1000000",
        "-use_wallclock_as_timestamps", "1",
        "-i", url,
    ]


def record_command(ffmpeg: str, url: str, workdir: Path, segment_seconds: int,
                   source_args: list[str] | None = None) -> list[str]:
    """``source_args`` replace the RTSP input (an InputSource feeding ffmpeg's stdin, see recorder/source.py)."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
        *(source_args if source_args is not None else input_args(url)),
        "-map", "0:v:0", "-c", "copy",
        "-f", "segment", "-segment_time", str(segment_seconds), "-reset_timestamps", "1",
        "-segment_format", "mp4",
        "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
        "-segment_list", str(workdir / SEGMENT_LIST), "-segment_list_type", "csv",
        str(workdir / SEGMENT_PATTERN),
    ]


def classify_failure(camera_id: str, stderr_lines: list[str]) -> CameraError:
    """Turn ffmpeg's last words into the specific error a technician can act on."""
    text = "\n".join(stderr_lines)
    if re.search(r"\b401\b|Unauthorized", text):
        return CameraUnauthorizedError(f"camera {camera_id}: RTSP 401 unauthorized — check the user name and password")
    if re.search(r"\b404\b|Not Found", text):
        return CameraStreamNotFoundError(f"camera {camera_id}: RTSP 404 — the stream path does not exist on the camera")
    if re.search(r"Connection refused|No route to host|Network is unreachable|Name or service not known|"
                 r"Connection timed out|timed out|Temporary failure in name resolution", text):
        reason = next((redact(line.strip()) for line in reversed(stderr_lines)
                       if re.search(r"refused|route|unreachable|not known|timed out|resolution", line)), "")
        return CameraUnreachableError(f"camera {camera_id}: unreachable ({reason.split(': ')[-1] or 'no answer'})")
    last = next((redact(line.strip()) for line in reversed(stderr_lines) if line.strip()), "stream ended")
    return CameraError(f"camera {camera_id}: stream stopped: {last}")


@dataclass(frozen=True)
class ProbeResult:
    duration: float
    codec: str
    width: int
    height: int


def probe_segment(ffprobe: str, path: Path) -> ProbeResult | None:
    """Duration and codec of a recorded segment, or None when it holds no decodable video."""
    try:
        done = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "v:0",
             "-show_entries", "format=duration:stream=codec_name,width,height",
             "-of", "default=noprint_wrappers=1", str(path)],
            capture_output=True, text=True, timeout=30, check=False, start_new_session=True, env=child_env(),
        )
    except subprocess.TimeoutExpired:
        return None
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    try:
        duration = float(fields.get("duration", "nan"))
    except ValueError:
        return None
    if done.returncode != 0 or not fields.get("codec_name") or not duration > 0:
        return None
    return ProbeResult(duration, fields["codec_name"], int(fields.get("width") or 0), int(fields.get("height") or 0))


def check_stream(ffprobe: str, camera_id: str, url: str, timeout_s: float = 8.0) -> None:
    """Connect once and raise the specific CameraError when the camera refuses (401, 404, unreachable).

    Credentials in ``url`` never reach ffprobe's argv: it connects through the process's loopback relay."""
    _, username, password = split_credentials(url, None, None)
    route = shared_relay().route(url, None, None) if username or password else None
    probe_url = route.url if route else url
    try:
        done = subprocess.run(
            [ffprobe, "-v", "error", *input_args(probe_url, timeout_s=5.0)[:-2], "-i", probe_url],
            capture_output=True, text=True, timeout=timeout_s, check=False, start_new_session=True, env=child_env(),
        )
    except subprocess.TimeoutExpired:
        raise CameraUnreachableError(f"camera {camera_id}: no answer within {timeout_s:.0f} s") from None
    finally:
        if route is not None:
            route.close()
    if done.returncode != 0:
        raise classify_failure(camera_id, done.stderr.splitlines())
