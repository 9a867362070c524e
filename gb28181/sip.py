"""A small SIP layer, enough for GB/T 28181: parsing and building messages, TCP framing by Content-Length,
and MD5 digest authentication (RFC 2617, with and without qop=auth).

Hand-written on purpose (as in every GB/T 28181 platform): devices send a handful of methods with a fixed set
of headers, and a general SIP stack would add dialog and transaction machinery that GB/T 28181 does not use.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from jifang.errors import JifangError

MAX_MESSAGE_BYTES = 64 * 1024  # larger than any GB/T 28181 message (a 1000-channel Catalog is split)
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length", "c": "content-type",
           "m": "contact", "k": "supported", "s": "subject"}
REASONS = {100: "Trying", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           408: "Request Timeout", 481: "Call/Transaction Does Not Exist", 486: "Busy Here", 488: "Not Acceptable Here",
           500: "Server Internal Error", 503: "Service Unavailable"}


class SipError(JifangError):
    """A SIP message that cannot be parsed or framed."""


@dataclass
class SipMessage:
    start: str  # request line ("REGISTER sip:... SIP/2.0") or status line ("SIP/2.0 200 OK")
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0] if self.is_request else ""

    @property
    def uri(self) -> str:
        return self.start.split(" ")[1] if self.is_request else ""

    @property
    def status(self) -> int:
        return 0 if self.is_request else int(self.start.split(" ")[1])

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            key = key.lower()
            if COMPACT.get(key, key) == wanted:
                return value
        return None

    def headers_named(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if COMPACT.get(key.lower(), key.lower()) == wanted]

    def set(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if COMPACT.get(k.lower(), k.lower()) != name.lower()]
        self.headers.append((name, value))

    @property
    def call_id(self) -> str:
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        value = (self.header("cseq") or "").split()
        try:
            return int(value[0]), value[1].upper()
        except (IndexError, ValueError):
            return 0, ""

    def to_bytes(self) -> bytes:
        lines = [self.start]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in ("content-length", "l")]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def parse(data: bytes) -> SipMessage:
    """One complete SIP message (a UDP datagram or a framed TCP message)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipError(f"message of {len(data)} bytes is larger than {MAX_MESSAGE_BYTES}")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("gb18030", "replace")  # some devices put GB2312 names into headers
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    if not re.fullmatch(r"[A-Z]+ \S+ SIP/2\.0|SIP/2\.0 \d{3}( .*)?", start):
        raise SipError(f"not a SIP start line: {start[:40]!a}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and headers:  # folded header line
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SipError(f"malformed header line {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    message = SipMessage(start, headers, body)
    length = message.header("content-length")
    if length is not None:
        try:
            count = int(length)
        except ValueError:
            raise SipError(f"Content-Length {length[:20]!r} is not a number") from None
        if count < 0 or count > len(body):
            raise SipError(f"Content-Length {count} but {len(body)} body bytes")
        message.body = body[:count]
    for required in ("call-id", "cseq", "from", "to"):
        if message.header(required) is None:
            raise SipError(f"{message.method or message.status}: missing {required} header")
    return message


class StreamFramer:
    """Splits a TCP byte stream into SIP messages by their Content-Length (RFC 3261 §18.3)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[SipMessage]:
        self._buffer += data
        messages = []
        while True:
            while self._buffer[:2] == b"\r\n":  # keep-alive CRLFs between messages
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise SipError("no end of SIP headers within 64 KiB")
                return messages
            head = bytes(self._buffer[:end]).decode("utf-8", "replace")
            match = re.search(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head, re.IGNORECASE | re.MULTILINE)
            length = int(match.group(1)) if match else 0
            if length > MAX_MESSAGE_BYTES:
                raise SipError(f"Content-Length {length} is larger than {MAX_MESSAGE_BYTES}")
            total = end + 4 + length
            if len(self._buffer) < total:
                return messages
            chunk = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(parse(chunk))


def tag_of(value: str) -> str:
    match = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return match.group(1) if match else ""


def user_of(value: str) -> str:
    """The user part of a From/To/Contact/URI: ``<sip:3402...@3402000000>;tag=1`` -> ``3402...``."""
    match = re.search(r"sips?:([^@;>\s]+)@", value or "")
    return match.group(1) if match else ""


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def response(request: SipMessage, code: int, extra: list[tuple[str, str]] | None = None, body: bytes = b"",
             to_tag: str | None = None) -> SipMessage:
    """The response to ``request``: Via, From, Call-ID and CSeq copied, a To tag added when it has none."""
    headers = [("Via", via) for via in request.headers_named("via")]
    to = request.header("to") or ""
    if not tag_of(to):
        to = f"{to};tag={to_tag or new_tag()}"
    headers += [("From", request.header("from") or ""), ("To", to), ("Call-ID", request.call_id),
                ("CSeq", request.header("cseq") or "")]
    headers += extra or []
    return SipMessage(f"SIP/2.0 {code} {REASONS.get(code, 'Unknown')}", headers, body)


# digest authentication (RFC 2617)

def parse_digest(value: str) -> dict[str, str]:
    """The parameters of a ``Digest ...`` Authorization or WWW-Authenticate header (keys lower-cased)."""
    value = value.strip()
    if not value.lower().startswith("digest"):
        return {}
    params = {}
    for match in re.finditer(r'([A-Za-z-]+)\s*=\s*("([^"]*)"|[^,\s]+)', value[6:]):
        params[match.group(1).lower()] = match.group(3) if match.group(3) is not None else match.group(2)
    return params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_response(username: str, realm: str, password: str, method: str, uri: str, nonce: str,
                    qop: str = "", nc: str = "", cnonce: str = "") -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def authorization_header(challenge: dict[str, str], username: str, password: str, method: str, uri: str) -> str:
    """The Authorization a device sends back for a ``WWW-Authenticate`` challenge (used by the simulator)."""
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    qop = "auth" if "auth" in challenge.get("qop", "").split(",") else ""
    cnonce, nc = secrets.token_hex(8), "00000001"
    answer = digest_response(username, realm, password, method, uri, nonce, qop, nc, cnonce)
    header = (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
              f'response="{answer}", algorithm=MD5')
    if qop:
        header += f', qop={qop}, nc={nc}, cnonce="{cnonce}"'
    return header
