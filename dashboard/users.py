"""Dashboard users: argon2 password hashes, roles and scopes, login sessions and the login rate limit.

Used by the web app and by ``jifang user add|passwd|disable``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jifang.dashboard.options import ROLES, SCOPED_ROLES, DashboardOptions
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from jifang import audit
from jifang.db import Catalog
from jifang.db.models import LoginAttemptRow, LoginLimitRow, UserRow, UserSessionRow
from jifang.errors import ConfigError

HASHER = PasswordHasher()
MIN_PASSWORD = 10
# verified against when the user does not exist, so that timing does not tell which user names exist
_DUMMY_HASH = HASHER.hash("jifang-no-such-user")
HASH_CONCURRENCY = 4  # x 64 MiB of argon2 memory at most, per dashboard process
HASH_WAIT_SECONDS = 10.0
HASHING = threading.BoundedSemaphore(HASH_CONCURRENCY)


class LoginBusy(Exception):
    """More logins arrived together than the password hashing allows within HASH_WAIT_SECONDS (503)."""


def _user_key(username: str, ip: str) -> str:
    return f"user:{username[:64]}|{ip[:64]}"


def _ip_key(ip: str) -> str:
    return f"ip:{ip[:64]}"


@dataclass(frozen=True)
class Principal:
    """The logged-in user as the routes see it."""

    user_id: int
    username: str
    role: str
    scope: tuple[str, ...]
    csrf_token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scope(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


class Users:
    def __init__(self, catalog: Catalog, options: DashboardOptions | None = None) -> None:
        self.catalog = catalog
        self.options = options or DashboardOptions()

    # accounts

    def add(self, username: str, password: str, role: str, scope: str, at: datetime, actor: str) -> UserRow:
        if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "") \
                .isalnum():
            raise ConfigError("user name: letters, digits, '.', '_' and '-' only (at most 64)")
        if role not in ROLES:
            raise ConfigError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
        grids = parse_scope(scope)
        if role in SCOPED_ROLES and not grids:
            raise ConfigError(f"a {role} needs --scope (grid or area codes, comma-separated)")
        if role not in SCOPED_ROLES and grids:
            raise ConfigError(f"a {role} has no scope: leave out --scope")
        self._check_password(password)
        with self.catalog.session() as session:
            if session.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                raise ConfigError(f"user {username} already exists")
            row = UserRow(username=username, password_hash=HASHER.hash(password), role=role,
                          scope=",".join(grids), disabled=False, created_at=at, password_changed_at=at)
            session.add(row)
            audit.add(session, at, actor, "user_add", f"user {username}",
                      detail=f"role {role}; scope {','.join(grids) or '-'}")
            session.commit()
            return row

    def set_password(self, username: str, password: str, at: datetime, actor: str) -> None:
        self._check_password(password)
        with self.catalog.session() as session:
            row = self._get(session, username)
            row.password_hash = HASHER.hash(password)
            row.password_changed_at = at
            session.execute(delete(UserSessionRow).where(UserSessionRow.user_id == row.id))
            audit.add(session, at, actor, "user_passwd", f"user {username}", detail="password changed; sessions ended")
            session.commit()

    def disable(self, username: str, at: datetime, actor: str) -> None:
        with self.catalog.session() as session:
            row = self._get(session, username)
            row.disabled = True
            session.execute(delete(UserSessionRow).where(UserSessionRow.user_id == row.id))
            audit.add(session, at, actor, "user_disable", f"user {username}", detail="disabled; sessions ended")
            session.commit()

    def list(self) -> list[UserRow]:
        with self.catalog.session() as session:
            return list(session.scalars(select(UserRow).order_by(UserRow.username)))

    @staticmethod
    def _get(session, username: str) -> UserRow:  # type: ignore[no-untyped-def]
        row = session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise ConfigError(f"user {username} does not exist")
        return row

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"the password needs at least {MIN_PASSWORD} characters")

    # login

    def take_login_slot(self, username: str, ip: str, now: datetime) -> bool:
        """Count this attempt as a failure in advance, atomically, before any password is checked: False (429)
        when the user name from this address, or the address, has no failure left in its window. One conditional
        UPDATE per counter, in one transaction, so simultaneous attempts in any number of processes cannot get
        more password checks than the limit (a right password gives its slot back in ``authenticate``)."""
        for _ in range(3):
            try:
                return self._take_slots(username, ip, now)
            except IntegrityError:
                continue  # a concurrent first attempt created the same counter: take it again
        return False

    def _take_slots(self, username: str, ip: str, now: datetime) -> bool:
        since = now - self.options.login_window
        counters = ((_user_key(username, ip), self.options.login_failures_per_user),
                    (_ip_key(ip), self.options.login_failures_per_ip))
        with self.catalog.session() as session:
            for key, limit in counters:
                if session.get(LoginLimitRow, key) is None:
                    session.add(LoginLimitRow(key=key, window_start=now, failures=0))
                    session.flush()
                counter = LoginLimitRow.key == key
                session.execute(update(LoginLimitRow).where(counter, LoginLimitRow.window_start < since)
                                .values(window_start=now, failures=0))
                taken = session.execute(update(LoginLimitRow).where(counter, LoginLimitRow.failures < limit)
                                        .values(failures=LoginLimitRow.failures + 1)).rowcount
                if not taken:
                    session.rollback()
                    return False
            session.commit()
        return True

    def authenticate(self, username: str, password: str, ip: str, now: datetime) -> UserRow | None:
        """The user when the password is right and the account enabled; every attempt is recorded."""
        with self.catalog.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.username == username[:64]))
            ok = False
            # each check costs argon2's 64 MiB: a bounded number run at once, whatever arrives together
            if not HASHING.acquire(timeout=HASH_WAIT_SECONDS):
                raise LoginBusy("too many logins at once; try again")
            try:
                ok = HASHER.verify(row.password_hash if row else _DUMMY_HASH, password) and row is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
            finally:
                HASHING.release()
            ok = ok and row is not None and not row.disabled
            if ok and row is not None and HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = HASHER.hash(password)
            session.add(LoginAttemptRow(username=username[:64], ip=ip[:64], at=now, success=ok))
            if ok:  # a success is no failure: give back the slot take_login_slot counted in advance
                session.execute(update(LoginLimitRow).where(LoginLimitRow.key == _user_key(username, ip),
                                                            LoginLimitRow.failures > 0)
                                .values(failures=LoginLimitRow.failures - 1))
            audit.add(session, now, username[:64] or "-", "login" if ok else "login_failed", "dashboard", source_ip=ip)
            session.commit()
            return row if ok else None

    # sessions

    def open_session(self, user: UserRow, ip: str, now: datetime) -> str:
        """A new session (a fresh random token: never one the client offered) and its cookie value."""
        token = secrets.token_urlsafe(32)
        with self.catalog.session() as session:
            session.add(UserSessionRow(token_hash=token_hash(token), user_id=user.id,
                                       csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                                       expires_at=now + self.options.session_max, ip=ip[:64]))
            session.execute(delete(UserSessionRow).where(UserSessionRow.expires_at < now))
            session.commit()
        return token

    def close_session(self, token: str) -> None:
        with self.catalog.session() as session:
            session.execute(delete(UserSessionRow).where(UserSessionRow.token_hash == token_hash(token)))
            session.commit()

    def principal(self, token: str, now: datetime) -> Principal | None:
        """The session's user, or None when the session is unknown, expired, idle too long or its user disabled.
        One indexed lookup (plain columns, no ORM objects); a write at most once a minute per session."""
        digest = token_hash(token)
        with self.catalog.session() as session:
            found = session.execute(select(
                UserSessionRow.csrf_token, UserSessionRow.expires_at, UserSessionRow.last_seen_at, UserRow.id,
                UserRow.username, UserRow.role, UserRow.scope, UserRow.disabled).join(
                UserRow, UserRow.id == UserSessionRow.user_id).where(UserSessionRow.token_hash == digest)).first()
            if found is None:
                return None
            csrf, expires_at, last_seen_at, user_id, username, role, scope, disabled = found
            if disabled or expires_at <= now or last_seen_at + self.options.session_idle <= now:
                session.execute(delete(UserSessionRow).where(UserSessionRow.token_hash == digest))
                session.commit()
                return None
            if (now - last_seen_at).total_seconds() > 60:  # one write a minute, not one per request
                session.execute(update(UserSessionRow).where(UserSessionRow.token_hash == digest)
                                .values(last_seen_at=now))
                session.commit()
            return Principal(user_id, username, role, parse_scope(scope), csrf)
