"""Sub-commands of ``jifang`` for the dashboard: ``dashboard`` (serve it) and ``user add|passwd|disable``."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from jifang.cli.common import EXIT_OK, open_catalog
from jifang.dashboard.options import ROLES, DashboardOptions
from jifang.dashboard.users import Users

from jifang.config import load_settings
from jifang.errors import ConfigError


def _users(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    _settings, catalog = open_catalog(args.config)
    return Users(catalog)


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read password file {args.password_file}: {exc.strerror}") from None
    if not sys.stdin.isatty():
        raise ConfigError("give --password-file (no terminal to prompt on)")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ConfigError("the passwords differ")
    return first


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


def cmd_user_add(args: argparse.Namespace) -> int:
    users = _users(args)
    users.add(args.username, _password(args), args.role, args.scope or "", datetime.now(UTC), _actor())
    print(f"user {args.username} added ({args.role}{', scope ' + args.scope if args.scope else ''})")
    return EXIT_OK


def cmd_user_passwd(args: argparse.Namespace) -> int:
    _users(args).set_password(args.username, _password(args), datetime.now(UTC), _actor())
    print(f"password of {args.username} changed; their sessions are ended")
    return EXIT_OK


def cmd_user_disable(args: argparse.Namespace) -> int:
    _users(args).disable(args.username, datetime.now(UTC), _actor())
    print(f"user {args.username} disabled; their sessions are ended")
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    # deferred: the web stack (uvicorn, FastAPI, templates) takes ~0.5 s to import and only this command serves it
    import uvicorn
    from jifang.dashboard.app import create_app

    trusted = trusted_proxies(args.forwarded_allow_ips)
    settings = load_settings(args.config)
    hosts = tuple(h.strip() for h in (args.allowed_hosts or "").split(",") if h.strip())
    options = DashboardOptions(secure_cookies=args.https, metrics_token=os.environ.get("JIFANG_METRICS_TOKEN") or None,
                               allowed_hosts=hosts, **networks(args.camera_networks))
    app = create_app(settings, options=options, warm_compliance=True)
    print(f"dashboard: http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=args.https,
                forwarded_allow_ips=trusted, server_header=False)
    return EXIT_OK


def networks(text: str | None) -> dict:
    """``camera_networks`` for DashboardOptions when --camera-networks is given (else the private defaults)."""
    if not text:
        return {}
    return {"camera_networks": tuple(address_ranges(text, "--camera-networks"))}


def trusted_proxies(text: str) -> list[str]:
    """The proxy addresses and networks whose X-Forwarded-For is believed; "*" is refused: behind it every
    client could name its own address (uvicorn then takes the left-most, client-written hop)."""
    return address_ranges(text, "--forwarded-allow-ips")


def address_ranges(text: str, flag: str) -> list[str]:
    entries = [part.strip() for part in text.split(",") if part.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"{flag}: {entry!r} is not an IP address or network (CIDR)") from None
    if not entries:
        raise ConfigError(f"{flag}: give at least one IP address or CIDR range")
    return entries


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dash = sub.add_parser("dashboard", help="serve the web dashboard and its API",
                          description="Serve the dashboard (pages, /api, /openapi.json, /healthz, /metrics).")
    dash.add_argument("--config", required=True, help="configuration file")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dash.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dash.add_argument("--https", action="store_true",
                      help="served over https (directly or behind a TLS proxy): Secure cookies, trust X-Forwarded-*")
    dash.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                      help="comma-separated proxy addresses or CIDR ranges whose X-Forwarded-For is trusted (with "
                      "--https); the client is the right-most hop outside them. Never '*'")
    dash.add_argument("--camera-networks", help="comma-separated CIDR ranges camera registration may probe "
                      "(default: the private networks 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)")
    dash.add_argument("--allowed-hosts", help="comma-separated host names the dashboard answers to (others: 400; "
                      "stops DNS rebinding), e.g. jifang.example.org,localhost")
    dash.set_defaults(func=cmd_dashboard)

    user = sub.add_parser("user", help="dashboard users").add_subparsers(dest="user_command", required=True)

    def common(parser: argparse.ArgumentParser, password: bool) -> argparse.ArgumentParser:
        parser.add_argument("username")
        parser.add_argument("--config", required=True, help="configuration file")
        if password:
            parser.add_argument("--password-file", help="file holding the password (else: prompt)")
        return parser

    add = common(user.add_parser("add", help="add a user"), password=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--scope", help="grid or area codes, comma-separated (supervisor, grid_worker)")
    add.set_defaults(func=cmd_user_add)
    common(user.add_parser("passwd", help="set a user's password (ends their sessions)"), password=True) \
        .set_defaults(func=cmd_user_passwd)
    common(user.add_parser("disable", help="disable a user (ends their sessions)"), password=False) \
        .set_defaults(func=cmd_user_disable)
