"""Sub-commands of ``jifang`` for the dashboard: ``dashboard`` (serve it) and ``user add|passwd|disable``."""

from __future__ import annotations

import argparse
import getpass
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

    settings = load_settings(args.config)
    app = create_app(settings, options=DashboardOptions(secure_cookies=args.https), warm_compliance=True)
    print(f"dashboard: http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=args.https,
                forwarded_allow_ips=args.forwarded_allow_ips, server_header=False)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dash = sub.add_parser("dashboard", help="serve the web dashboard and its API",
                          description="Serve the dashboard (pages, /api, /openapi.json, /healthz, /metrics).")
    dash.add_argument("--config", required=True, help="configuration file")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dash.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dash.add_argument("--https", action="store_true",
                      help="served over https (directly or behind a TLS proxy): Secure cookies, trust X-Forwarded-*")
    dash.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                      help="proxy addresses whose X-Forwarded-For is trusted (with --https)")
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
