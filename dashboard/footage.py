"""Footage grants: after the scope check and the audit entry, a signed grant names the user, the camera and
the time range; its segment URLs are valid for minutes and only for that user. Segment keys come from the
catalog, never from the URL, so no path can be smuggled in."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from itsdangerous import BadSignature, SignatureExpired
from jifang.dashboard.state import AppState
from jifang.dashboard.users import Principal
from sqlalchemy import select

from jifang.db.models import SegmentRow
from jifang.errors import ConfigError

CST = timezone(timedelta(hours=8))
MAX_RANGE = timedelta(hours=2)


@dataclass(frozen=True)
class Grant:
    user_id: int
    camera_id: str
    start: datetime
    end: datetime


def parse_moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO 8601 time (e.g. 2026-03-01T08:00:00+08:00)") from None
    return (value if value.tzinfo else value.replace(tzinfo=CST)).astimezone(UTC)


def check_range(start: datetime, end: datetime, purpose: str) -> None:
    if end <= start:
        raise ConfigError("the end of the range must be after its start")
    if end - start > MAX_RANGE:
        raise ConfigError("at most 2 hours of video per request")
    if len(purpose.strip()) < 2:
        raise ConfigError("state the purpose of viewing this footage")


def issue(state: AppState, principal: Principal, camera_id: str, start: datetime, end: datetime) -> str:
    return state.signer.dumps([principal.user_id, camera_id, start.isoformat(), end.isoformat(),
                               session_tag(principal.csrf_token)])


def session_tag(csrf_token: str) -> str:
    """Names the login session by its CSRF token (one per session): a grant ends when the session does."""
    return hashlib.sha256(csrf_token.encode()).hexdigest()[:24]


def open_grant(state: AppState, principal: Principal, token: str) -> Grant | None:
    try:
        user_id, camera_id, start, end, tag = state.signer.loads(token, max_age=state.options.footage_grant_seconds)
    except (BadSignature, SignatureExpired, ValueError, TypeError):
        return None
    if user_id != principal.user_id or not hmac.compare_digest(str(tag), session_tag(principal.csrf_token)):
        return None
    return Grant(user_id, camera_id, datetime.fromisoformat(start), datetime.fromisoformat(end))


def segments(state: AppState, camera_id: str, start: datetime, end: datetime) -> list[SegmentRow]:
    with state.catalog.session() as session:
        return list(session.scalars(select(SegmentRow).where(
            SegmentRow.camera_id == camera_id, SegmentRow.start_at < end, SegmentRow.end_at > start,
            SegmentRow.deleted_at.is_(None), SegmentRow.uploaded_at.is_not(None)).order_by(SegmentRow.start_at)))


def segment_of(state: AppState, grant: Grant, segment_id: int) -> SegmentRow | None:
    with state.catalog.session() as session:
        row = session.get(SegmentRow, segment_id)
    if row is None or row.camera_id != grant.camera_id or row.deleted_at is not None or row.uploaded_at is None:
        return None
    if not (row.start_at < grant.end and row.end_at > grant.start):
        return None
    return row


def valid_image_key(key: str, camera_id: str) -> bool:
    """Evidence image keys as recognition writes them: images/<camera>/<YYYY>/<MM>/<DD>/<name>.jpg."""
    parts = key.split("/")
    return (len(parts) == 6 and parts[0] == "images" and parts[1] == camera_id and key.endswith(".jpg")
            and all(p and p not in (".", "..") and "\\" not in p for p in parts))


def split_fragmented(data: bytes) -> tuple[bytes, bytes] | None:
    """A fragmented MP4 segment as HLS wants it: the initialisation part (ftyp + moov, everything before the first
    moof) and the media part (moof/mdat pairs to the end). None when the file has no fragments."""
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8]
        if kind == b"moof":
            return (data[:offset], data[offset:]) if offset > 0 else None
        if size == 1 and offset + 16 <= len(data):  # 64-bit size
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        elif size == 0:  # the box runs to the end of the file
            return None
        if size < 8:
            return None
        offset += size
    return None


def playlist(grant_segments: list[SegmentRow]) -> str:
    """An HLS media playlist (version 7, fMP4) of the grant's segments. Each recorded segment is a fragmented MP4
    with its own moov, so each gets its own EXT-X-MAP (the segment's ftyp + moov) and a discontinuity: timestamps
    and codec parameters may restart at every segment (and there may be holes between segments)."""
    target = max([1, *(math.ceil((r.end_at - r.start_at).total_seconds()) for r in grant_segments)])
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD"]
    for index, row in enumerate(grant_segments):
        if index:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [f'#EXT-X-MAP:URI="segments/{row.id}/init.mp4"',
                  f"#EXT-X-PROGRAM-DATE-TIME:{row.start_at.astimezone(UTC).isoformat(timespec='milliseconds')}",
                  f"#EXTINF:{(row.end_at - row.start_at).total_seconds():.3f},",
                  f"segments/{row.id}/media.m4s"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
