"""Camera credentials never reach a child process: a loopback RTSP relay inside the agent adds them.

ffmpeg and ffprobe take an RTSP password only inside the URL, and a child's argv is readable by every uid
through ``/proc/<pid>/cmdline``. So the children connect to ``rtsp://127.0.0.1:PORT/<token>/<camera path>``
instead; this relay (a thread of the process that holds the decrypted password) forwards the connection to the
camera, rewrites the request URIs and answers the camera's Basic or Digest challenge itself. The argv then holds
a random token, not a secret, and the token is useless to anyone else: the relay serves only connections whose
client socket belongs to this process's uid (read from ``/proc/net/tcp``), so another local user who reads the
token from the process list cannot watch the stream either. The child's environment is scrubbed of secrets too
(:func:`child_env`), although another uid cannot read ``/proc/<pid>/environ`` anyway.

The recorder always uses RTSP over TCP, so one connection carries both the requests and the interleaved media
(``$`` frames), which the relay copies without looking inside.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

log = logging.getLogger("jifang.recorder.relay")

UPSTREAM_TIMEOUT_S = 4.0  # below ffmpeg's 5 s -timeout, so ffmpeg hears why rather than timing out itself
MAX_HEADER_BYTES = 64 * 1024  # an RTSP message head larger than this is not from a camera
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|(^|_)KEY$|_PW$|(^|_)KEY_", re.IGNORECASE)


def split_credentials(url: str, username: str | None, password: str | None) -> tuple[str, str | None, str | None]:
    """The URL without user info, and the credentials (given ones win over ones written in the URL)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, username or None, password
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return bare, username or unquote(parts.username), password if username else unquote(parts.password or "")


def child_env(extra_secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment minus every variable that holds a secret: by name (``*PASSWORD*``, ``*_KEY``)
    or by value (any camera password this process has routed through the relay, and ``extra_secrets``)."""
    known = [s for s in (*_routed_secrets(), *extra_secrets) if s]
    return {name: value for name, value in os.environ.items()
            if not SECRET_NAME.search(name) and not any(_holds(value, secret) for secret in known)}


def _holds(value: str, secret: str) -> bool:
    # a very short password would match inside unrelated values (PATH); then only an exact value counts
    return value == secret or (len(secret) >= 6 and secret in value)


@dataclass
class Route:
    """One camera behind the relay. ``url`` is what a child process is given; it holds no secret."""

    url: str
    upstream: str
    username: str | None
    password: str | None = field(repr=False)
    _relay: CredentialRelay | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._relay is not None:
            self._relay.forget(self)


class CredentialRelay:
    """Listens on 127.0.0.1 (a free port) and serves every route of this process."""

    def __init__(self, upstream_timeout: float = UPSTREAM_TIMEOUT_S) -> None:
        self.upstream_timeout = upstream_timeout
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.port = 0
        self.refused_foreign = 0  # connections from another uid, refused (the regression test reads it)

    def start(self) -> CredentialRelay:
        with self._lock:
            if self._listener is None:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", 0))
                listener.listen(64)
                self._listener = listener
                self.port = listener.getsockname()[1]
                threading.Thread(target=self._accept_loop, args=(listener,), name="rtsp-relay", daemon=True).start()
        return self

    def route(self, url: str, username: str | None, password: str | None) -> Route:
        """A secret-free local URL for ``url`` (whose own user info, if any, is moved into the relay)."""
        upstream, username, password = split_credentials(url, username, password)
        self.start()
        parts = urlsplit(upstream)
        if parts.scheme not in ("rtsp", "rtsps"):
            return Route(upstream, upstream, None, None)
        token = secrets.token_urlsafe(18)
        local = urlunsplit(("rtsp", f"127.0.0.1:{self.port}", f"/{token}{parts.path or '/'}", parts.query, ""))
        route = Route(local, upstream, username, password, self)
        with self._lock:
            self._routes[token] = route
        return route

    def forget(self, route: Route) -> None:
        with self._lock:
            for token, known in list(self._routes.items()):
                if known is route:
                    del self._routes[token]

    def secrets(self) -> list[str]:
        with self._lock:
            return [r.password for r in self._routes.values() if r.password]

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def __enter__(self) -> CredentialRelay:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # connections

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, peer = listener.accept()
            except OSError:
                return  # closed
            if peer_uid(peer, ("127.0.0.1", self.port)) != os.getuid():
                self.refused_foreign += 1
                log.warning("RTSP relay: refused a connection from another user (port %d)", peer[1])
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), name="rtsp-relay-conn", daemon=True).start()

    def _lookup(self, uri: str) -> tuple[Route, str] | None:
        prefix = f"rtsp://127.0.0.1:{self.port}/"
        if not uri.startswith(prefix):
            return None
        token = uri[len(prefix):].split("/", 1)[0].split("?", 1)[0]
        with self._lock:
            route = self._routes.get(token)
        return (route, prefix + token) if route else None

    def _serve(self, client: socket.socket) -> None:
        session = _Session(self, client)
        try:
            session.run()
        except OSError:
            pass
        finally:
            session.close()


class _Session:
    """One child connection and its upstream camera connection."""

    def __init__(self, relay: CredentialRelay, client: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.upstream: socket.socket | None = None
        self.route: Route | None = None
        self.local_prefix = ""
        self.upstream_prefix = ""
        self.upstream_error = ""
        self.challenge: dict[str, str] | None = None
        self.nonce_count = 0
        self.pending: dict[str, tuple[bytes, bytes, bool]] = {}  # CSeq -> (head without auth, body, retried)
        self.send_lock = threading.Lock()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def run(self) -> None:
        reader = _Reader(self.client)
        while True:
            message = reader.next_message()
            if message is None:
                return
            if message[:1] == b"$":
                if self.upstream is not None:
                    self._send_upstream(message)
                continue
            self._on_request(message)

    def _on_request(self, message: bytes) -> None:
        head, body = _split(message)
        lines = head.decode("latin-1").split("\r\n")
        method, uri, version = [*lines[0].split(" "), "", ""][:3]
        headers = [line for line in lines[1:] if line and not line.lower().startswith("authorization:")]
        cseq = _header(headers, "cseq") or "0"
        if self.route is None:
            found = self.relay._lookup(uri)
            if found is None:
                self._reply(cseq, 404, "Not Found")
                return
            self.route, self.local_prefix = found
            parts = urlsplit(self.route.upstream)
            self.upstream_prefix = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
            self._connect()
        if uri.startswith(self.local_prefix):
            uri = self.upstream_prefix + uri[len(self.local_prefix):]
        request = "\r\n".join([f"{method} {uri} {version}", *headers]).encode("latin-1")
        if self.upstream is None:
            if method == "OPTIONS":  # let ffmpeg go on to DESCRIBE, whose failure it prints with our reason
                self._reply(cseq, 200, "OK", ["Public: OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, GET_PARAMETER"])
            else:
                self._reply(cseq, 503, f"camera: {self.upstream_error}")
            return
        self.pending[cseq] = (request, body, False)
        self._send_upstream(self._with_auth(request, method, uri) + b"\r\n\r\n" + body)

    def _connect(self) -> None:
        assert self.route is not None
        parts = urlsplit(self.route.upstream)
        port = parts.port or (322 if parts.scheme == "rtsps" else 554)
        try:
            upstream = socket.create_connection((parts.hostname, port), timeout=self.relay.upstream_timeout)
            if parts.scheme == "rtsps":
                # ffmpeg does not verify a camera's certificate by default (cameras ship self-signed ones);
                # the relay keeps that behaviour rather than refusing cameras that recorded before
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                upstream = context.wrap_socket(upstream, server_hostname=parts.hostname)
            upstream.settimeout(None)
        except OSError as exc:
            self.upstream_error = _reason(exc)
            return
        self.upstream = upstream
        threading.Thread(target=self._pump_down, name="rtsp-relay-down", daemon=True).start()

    def _pump_down(self) -> None:
        """Camera -> child: media frames verbatim; a 401 is answered once with credentials, never shown."""
        assert self.upstream is not None
        reader = _Reader(self.upstream)
        try:
            while True:
                message = reader.next_message()
                if message is None:
                    break
                if message[:1] != b"$" and message.startswith(b"RTSP/") and self._retried_with_auth(message):
                    continue
                self.client.sendall(message)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_RDWR)

    def _retried_with_auth(self, response: bytes) -> bool:
        head, _ = _split(response)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ")
        cseq = _header(lines[1:], "cseq") or "0"
        pending = self.pending.pop(cseq, None)
        if pending is None or len(status) < 2 or status[1] != "401" or pending[2]:
            return False
        assert self.route is not None
        if not self.route.username:
            return False
        challenges = [line.split(":", 1)[1].strip() for line in lines[1:]
                      if line.lower().startswith("www-authenticate:")]
        digest = next((c for c in challenges if c.lower().startswith("digest")), None)
        if digest is None and not any(c.lower().startswith("basic") for c in challenges):
            return False
        self.challenge = _parse_challenge(digest) if digest else {"scheme": "basic"}
        self.nonce_count = 0
        request, body, _ = pending
        method, uri = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
        self.pending[cseq] = (request, body, True)
        self._send_upstream(self._with_auth(request, method, uri) + b"\r\n\r\n" + body)
        return True

    def _with_auth(self, request: bytes, method: str, uri: str) -> bytes:
        route, challenge = self.route, self.challenge
        if challenge is None or route is None or not route.username:
            return request
        user, password = route.username, route.password or ""
        if challenge["scheme"] == "basic":
            value = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        else:
            realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
            ha1 = _md5(f"{user}:{realm}:{password}")
            ha2 = _md5(f"{method}:{uri}")
            fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
            if "auth" in challenge.get("qop", "").split(","):
                self.nonce_count += 1
                nc, cnonce = f"{self.nonce_count:08x}", secrets.token_hex(8)
                fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
                response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            else:
                response = _md5(f"{ha1}:{nonce}:{ha2}")
            fields.append(f'response="{response}"')
            if "opaque" in challenge:
                fields.append(f'opaque="{challenge["opaque"]}"')
            value = "Digest " + ", ".join(fields)
        return request + f"\r\nAuthorization: {value}".encode("latin-1")

    def _send_upstream(self, data: bytes) -> None:
        assert self.upstream is not None
        with self.send_lock:
            self.upstream.sendall(data)

    def _reply(self, cseq: str, status: int, reason: str, extra: list[str] | None = None) -> None:
        lines = [f"RTSP/1.0 {status} {reason}", f"CSeq: {cseq}", *(extra or []), "Content-Length: 0", "", ""]
        self.client.sendall("\r\n".join(lines).encode("latin-1", "replace"))


class _Reader:
    """Splits a TCP byte stream into RTSP messages (head + Content-Length body) and ``$`` media frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def next_message(self) -> bytes | None:
        while True:
            if self.buffer[:1] == b"$":
                if len(self.buffer) >= 4:
                    end = 4 + int.from_bytes(self.buffer[2:4], "big")
                    if len(self.buffer) >= end:
                        return self._take(end)
            elif self.buffer:
                head_end = self.buffer.find(b"\r\n\r\n")
                if head_end >= 0:
                    match = re.search(rb"(?im)^content-length:\s*(\d+)", bytes(self.buffer[:head_end]))
                    end = head_end + 4 + (int(match.group(1)) if match else 0)
                    if len(self.buffer) >= end:
                        return self._take(end)
                elif len(self.buffer) > MAX_HEADER_BYTES:
                    return None
            if not self._fill():
                return None

    def _take(self, end: int) -> bytes:
        message = bytes(self.buffer[:end])
        del self.buffer[:end]
        return message


def peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the client end of a loopback TCP connection, from the kernel's socket table."""
    want_local = _hex_address(peer)
    want_remote = _hex_address(local)
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[1] == want_local and fields[2] == want_remote:
                    return int(fields[7])
    except OSError:
        return None
    return None


def _hex_address(address: tuple[str, int]) -> str:
    packed = socket.inet_aton(address[0])
    return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"


def _split(message: bytes) -> tuple[bytes, bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return head, body


def _header(lines: list[str], name: str) -> str | None:
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _parse_challenge(text: str) -> dict[str, str]:
    params = {key.lower(): quoted or bare for key, quoted, bare in
              re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))', text[len("digest"):])}
    return {"scheme": "digest", **params}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "Connection timed out"
    if isinstance(exc, socket.gaierror):
        return "Name or service not known"
    return exc.strerror or type(exc).__name__


_SHARED: CredentialRelay | None = None
_SHARED_LOCK = threading.Lock()


def shared_relay() -> CredentialRelay:
    """The process's one relay (started on first use): every recorder and probe of the process shares it."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = CredentialRelay().start()
        return _SHARED


def _routed_secrets() -> list[str]:
    return _SHARED.secrets() if _SHARED is not None else []


def secret_free_url(url: str, username: str | None, password: str | None) -> str:
    """The URL a child process may be given: ``url`` itself when it carries no credentials, else a relay route."""
    _, user, secret = split_credentials(url, username, password)
    if not user and not secret:
        return url
    return shared_relay().route(url, username, password).url
