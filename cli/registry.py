"""Sub-commands of ``jifang`` for the registry: ``registry``, ``grid``, ``team`` and ``camera``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from jifang.cli.common import EXIT_OK, open_catalog, with_config
from jifang.edge.onboarding import from_probe, split_host_port
from jifang.edge.onboarding import register as register_camera
from jifang.edge.onvif.discovery import discover

from jifang import audit
from jifang.crypto import SecretBox
from jifang.errors import ConfigError
from jifang.registry import TEAM_ROLES, NewCamera, open_registry


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    settings, catalog = open_catalog(args.config)
    return settings, open_registry(settings, catalog)


def _read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_file", None):
        try:
            return Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read password file {args.password_file}: {exc.strerror}") from None
    if getattr(args, "password_env", None):
        value = os.environ.get(args.password_env)
        if value is None:
            raise ConfigError(f"environment variable {args.password_env} is not set")
        return value
    return ""


def cmd_new_key(_args: argparse.Namespace) -> int:
    print(SecretBox.new_key())
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    _settings, registry = _open(args)
    text = registry.export_yaml()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"registry written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    _settings, registry = _open(args)
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    counts = registry.import_yaml(text, source=args.file)
    print(", ".join(f"{n} {what}" for what, n in counts.items()) + " imported")
    return EXIT_OK


def cmd_rotate_key(args: argparse.Namespace) -> int:
    settings, registry = _open(args)
    old = settings.registry.key.read("registry.key")
    new = Path(args.new_key_file).read_text(encoding="utf-8").strip()
    count = registry.rotate_key(SecretBox(f"{new},{old}"))
    print(f"{count} camera passwords re-encrypted; now configure the new key (the old one can be dropped)")
    return EXIT_OK


def cmd_grid_add(args: argparse.Namespace) -> int:
    _settings, registry = _open(args)
    registry.add_grid(args.code, args.name, args.type, args.village)
    print(f"grid {args.code} {args.name} registered")
    return EXIT_OK


def cmd_team_add(args: argparse.Namespace) -> int:
    _settings, registry = _open(args)
    registry.add_member(args.grid, args.name, args.role, args.phone)
    print(f"{args.role} {args.name} added to grid {args.grid}")
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from jifang.edge.onvif.client import probe  # deferred: zeep and lxml load only for the ONVIF commands

    host, port = split_host_port(args.endpoint)
    result = probe(host, port, args.user or "", _read_password(args), timeout=args.timeout)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"{result.manufacturer} {result.model} (firmware {result.firmware}, serial {result.serial})")
    for profile in result.profiles:
        fps = f" {profile.fps:g} fps" if profile.fps else ""
        size = f"{profile.width}x{profile.height}"
        print(f"  profile {profile.token}: {profile.encoding} {size}{fps} {profile.stream_uri}")
    print(f"main stream: {result.main_stream_uri}")
    print(f"sub stream:  {result.sub_stream_uri or '-'}")
    print(f"snapshot:    {result.snapshot_uri or '-'}")
    print(f"clock offset: {result.clock_offset_seconds:+.1f} s")
    return EXIT_OK


def cmd_camera_add(args: argparse.Namespace) -> int:
    settings, registry = _open(args)
    password = _read_password(args)
    if args.from_probe:
        camera = from_probe(args.from_probe, args.user or "", password, timeout=args.timeout)
    elif args.rtsp_url:
        camera = NewCamera(id="", name="", grid="", tier="", main_rtsp_url=args.rtsp_url, username=args.user or "",
                           password=password or None)
    else:
        raise ConfigError("give --from-probe HOST[:PORT] (ONVIF) or --rtsp-url URL")
    camera.id, camera.name, camera.grid, camera.tier = args.id, args.name, args.grid, args.tier
    camera.location, camera.purpose, camera.signage = args.location, args.purpose, args.signage == "yes"
    camera.site, camera.recognize = args.site, _kinds(args.recognize)
    if args.sub_rtsp_url:
        camera.sub_rtsp_url = args.sub_rtsp_url
    at = datetime.now(UTC)
    outcome = register_camera(registry, camera, actor=args.by, at=at, ffprobe=settings.recorder.ffprobe,
                       stream_check=not args.no_stream_check, allow_clock_offset=args.allow_clock_offset)
    audit.record(registry.catalog, at, args.by, "camera_add", f"camera {camera.id}", grid=camera.grid,
                 purpose=camera.purpose, detail=f"tier {camera.tier}; onvif {camera.onvif_endpoint or '-'}; CLI")
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"camera {camera.id} {camera.name} registered in grid {camera.grid} ({camera.tier})")
    print(f"  records {camera.main_rtsp_url}" + (f"; recognition ({', '.join(camera.recognize)}) on "
                                               f"{camera.sub_rtsp_url or camera.main_rtsp_url}"
                                               if camera.recognize else ""))
    return EXIT_OK


def _kinds(text: str | None) -> list[str]:
    kinds = [kind.strip() for kind in (text or "").split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in ("plate", "face")]
    if unknown:
        raise ConfigError(f"--recognize: {unknown[0]!r} is not a recognition kind (plate, face)")
    return kinds


def cmd_camera_set(args: argparse.Namespace) -> int:
    _settings, registry = _open(args)
    changes: dict = {}
    if args.enabled is not None:
        changes["enabled"] = args.enabled == "yes"
    for name in ("tier", "grid", "name", "location", "purpose", "site"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name) or None if name == "site" else getattr(args, name)
    if args.signage is not None:
        changes["signage"] = args.signage == "yes"
    if args.recognize is not None:
        changes["recognize"] = _kinds(args.recognize)
    if args.sub_rtsp_url is not None:
        changes["sub_rtsp_url"] = args.sub_rtsp_url or None
    if not changes:
        raise ConfigError("nothing to change: give at least one of --enabled, --tier, --grid, --recognize, ...")
    _row, diff = registry.update_camera(args.id, datetime.now(UTC), **changes)
    print(f"camera {args.id}: " + ("; ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in diff.items())
                                   or "unchanged") + (" (running agents apply it within seconds)" if diff else ""))
    return EXIT_OK


def cmd_camera_remove(args: argparse.Namespace) -> int:
    _settings, registry = _open(args)
    registry.remove_camera(args.id, datetime.now(UTC))
    print(f"camera {args.id} removed from the registry (its recordings keep their retention)")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    settings, registry = _open(args)
    report = registry.sync(settings, datetime.now(UTC), prune=args.prune)
    print(f"{report.grids} grids, {report.team} team members, {len(settings.cameras)} cameras declared in "
          f"{args.config}: {len(report.added)} cameras added, {len(report.updated)} updated, "
          f"{len(report.released)} no longer declared disabled")
    return EXIT_OK


def cmd_camera_list(args: argparse.Namespace) -> int:
    from jifang.registry import camera_from_row

    _settings, registry = _open(args)
    rows = []
    for row in registry.cameras():
        data = camera_from_row(row).model_dump(mode="json", exclude={"password"})
        data.update(main_rtsp_url=row.main_rtsp_url, status=row.status, managed_by=row.managed_by or "registry",
                    has_password=bool(
            row.password_encrypted or row.password_ref))
        rows.append(data)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            state = r["status"] if r["enabled"] else "disabled"
            kinds = ",".join(r["recognize"]) or "-"
            print(f"{r['id']}\t{r['tier']}\t{r['grid']}\t{state}\t{r['managed_by']}\t{kinds}\t{r['name']}\t"
                  f"{r['rtsp_url']}")
    return EXIT_OK


def cmd_discover(args: argparse.Namespace) -> int:
    devices = discover(timeout=args.timeout, unicast_hosts=args.host or None, interface=args.interface,
                       port=args.port, multicast=not args.no_multicast)
    registered: set[str] = set()
    if args.config:
        _settings, registry = _open(args)
        registered = {c.onvif_endpoint.split(":")[0] for c in registry.cameras() if c.onvif_endpoint}
        registered |= {c.onvif_endpoint for c in registry.cameras() if c.onvif_endpoint}
    rows = []
    for device in devices:
        endpoint = device.xaddrs[0].split("//", 1)[-1].split("/", 1)[0] if device.xaddrs else device.host
        rows.append({"address": device.address, "host": device.host, "endpoint": endpoint, "xaddrs": device.xaddrs,
                     "scopes": device.scopes, "registered": endpoint in registered})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"{r['endpoint']}\t{'registered' if r['registered'] else 'new'}\t{r['address']}")
        print(f"{len(rows)} ONVIF device(s) found", file=sys.stderr)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    reg = sub.add_parser("registry", help="the registry as a whole: export, import, keys")
    rsub = reg.add_subparsers(dest="registry_command", required=True)
    rsub.add_parser("new-key", help="print a new registry (password encryption) key").set_defaults(func=cmd_new_key)
    export = with_config(rsub.add_parser("export", help="write the whole registry as YAML (passwords encrypted)"))
    export.add_argument("--output", help="file (default: standard output)")
    export.set_defaults(func=cmd_export)
    imp = with_config(rsub.add_parser("import", help="load a registry export into an empty database"))
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    sync = with_config(rsub.add_parser("sync", help="upsert the grids, teams and cameras the configuration file "
                                       "declares (also done at every agent and dashboard start)"))
    sync.add_argument("--prune", action="store_true", help="also disable cameras the file declared before and no "
                      "longer does (their recordings are kept)")
    sync.set_defaults(func=cmd_sync)
    rot = with_config(rsub.add_parser("rotate-key", help="re-encrypt every camera password with a new key"))
    rot.add_argument("--new-key-file", required=True)
    rot.set_defaults(func=cmd_rotate_key)

    grid = sub.add_parser("grid", help="grids").add_subparsers(dest="grid_command", required=True)
    gadd = with_config(grid.add_parser("add", help="register a grid"))
    gadd.add_argument("--code", required=True, help="12-digit village/community code + 3-digit serial")
    gadd.add_argument("--name", required=True)
    gadd.add_argument("--type", default="城市社区", choices=["城市社区", "城中村", "农村", "专属网格"])
    gadd.add_argument("--village", help="village/community area code")
    gadd.set_defaults(func=cmd_grid_add)

    team = sub.add_parser("team", help="grid teams (3+X+Y)").add_subparsers(dest="team_command", required=True)
    tadd = with_config(team.add_parser("add", help="add a team member to a grid"))
    tadd.add_argument("--grid", required=True)
    tadd.add_argument("--name", required=True)
    tadd.add_argument("--role", required=True, choices=list(TEAM_ROLES))
    tadd.add_argument("--phone", default="")
    tadd.set_defaults(func=cmd_team_add)

    cam = sub.add_parser("camera", help="camera onboarding").add_subparsers(dest="camera_command", required=True)

    def credentials(p: argparse.ArgumentParser) -> None:
        p.add_argument("--user", help="camera user name")
        p.add_argument("--password-file", help="file holding the camera password")
        p.add_argument("--password-env", help="environment variable holding the camera password")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds per ONVIF request")

    probe = cam.add_parser("probe", help="ONVIF probe: device, profiles, stream URIs, clock offset")
    probe.add_argument("endpoint", metavar="HOST[:PORT]")
    credentials(probe)
    probe.add_argument("--json", action="store_true")
    probe.set_defaults(func=cmd_probe)

    add = with_config(cam.add_parser("add", help="register a camera point (probe, stream check, clock check)"))
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-probe", metavar="HOST[:PORT]", help="ONVIF endpoint to probe")
    source.add_argument("--rtsp-url", help="RTSP URL of a camera without ONVIF")
    credentials(add)
    add.add_argument("--id", required=True, help="20-digit GB/T 28181 ID")
    add.add_argument("--name", required=True)
    add.add_argument("--grid", required=True)
    add.add_argument("--tier", required=True, choices=["key", "important", "general"])
    add.add_argument("--location", default="")
    add.add_argument("--signage", choices=["yes", "no"], default="no",
                     help="is the notice sign posted (required for key points)")
    add.add_argument("--purpose", default="", help="purpose of the point (required for key points)")
    add.add_argument("--sub-rtsp-url", help="sub-stream for recognition (default: the ONVIF probe's second profile)")
    add.add_argument("--recognize", default="", help="recognition at this point: plate, face or plate,face")
    add.add_argument("--site", help="only agents of this site record it (default: any agent)")
    add.add_argument("--by", default=os.environ.get("USER", "technician"), help="who registers it")
    add.add_argument("--no-stream-check", action="store_true", help="skip opening the RTSP stream")
    add.add_argument("--allow-clock-offset", action="store_true",
                     help="register even when the camera clock is more than 60 s off")
    add.set_defaults(func=cmd_camera_add)

    cset = with_config(cam.add_parser("set", help="change a registered point (running agents apply it live)"))
    cset.add_argument("id")
    cset.add_argument("--enabled", choices=["yes", "no"])
    cset.add_argument("--tier", choices=["key", "important", "general"])
    cset.add_argument("--grid")
    cset.add_argument("--name")
    cset.add_argument("--location")
    cset.add_argument("--signage", choices=["yes", "no"])
    cset.add_argument("--purpose")
    cset.add_argument("--site", help="'' for any site")
    cset.add_argument("--recognize", help="plate, face, plate,face or '' for none")
    cset.add_argument("--sub-rtsp-url", help="'' for the main stream")
    cset.set_defaults(func=cmd_camera_set)
    crm = with_config(cam.add_parser("remove", help="forget a point (its recordings keep their retention)"))
    crm.add_argument("id")
    crm.set_defaults(func=cmd_camera_remove)

    lst = with_config(cam.add_parser("list", help="registered cameras"))
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_camera_list)

    disc = with_config(cam.add_parser("discover", help="find ONVIF cameras (WS-Discovery)"), required=False)
    disc.add_argument("--timeout", type=float, default=3.0)
    disc.add_argument("--interface", help="local IP to send the multicast probe from")
    disc.add_argument("--host", action="append", help="also probe this host[:port] by unicast (routed sites)")
    disc.add_argument("--port", type=int, default=3702)
    disc.add_argument("--no-multicast", action="store_true", help="unicast only")
    disc.add_argument("--json", action="store_true")
    disc.set_defaults(func=cmd_discover)

