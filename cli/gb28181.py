"""``jifang gb28181 ...``: the GB/T 28181 devices allowed to register, their channels, and assigning a channel
to a grid and tier (from then on it is recorded). The SIP server itself runs inside ``jifang edge run`` when
``gb28181.enabled`` is set."""

from __future__ import annotations

import argparse
import getpass
import os

from jifang.cli.common import EXIT_OK, open_catalog, with_config
from jifang.gb28181.devices import DeviceStore
from jifang.gb28181.service import GbPlatform, GbRecording, GbService

from jifang.errors import JifangError
from jifang.registry import open_registry
from jifang.store.base import utc_now


def attach_to_agent(agent) -> GbPlatform:  # type: ignore[no-untyped-def]
    """Start the SIP server and hand the agent the recorders of the assigned channels (``jifang edge run``)."""
    registry = agent.registry
    platform = GbPlatform(agent.settings.gb28181, agent.catalog, registry.box if registry else None,
                          agent.metrics.metrics_registry, agent.clock)
    platform.start()
    recording = GbRecording(platform, agent.settings.recorder, agent.sink, agent.catalog, agent.metrics,
                            agent.spool.recording_dir, agent.clock, on_status=agent._status_changed,
                            site=agent.settings.site)
    agent.companions.append(GbService(platform, recording))
    return platform


def _store(args: argparse.Namespace) -> tuple[DeviceStore, object]:
    settings, catalog = open_catalog(args.config)
    registry = open_registry(settings, catalog)
    return DeviceStore(catalog, registry.box), registry


def cmd_add_device(args: argparse.Namespace) -> int:
    store, _registry = _store(args)
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise JifangError(f"environment variable {args.password_env} is not set")
    else:
        password = getpass.getpass(f"SIP password of device {args.device_id}: ")
    store.add_device(args.device_id, password, args.name, utc_now())
    print(f"device {args.device_id} may register (password stored encrypted)")
    return EXIT_OK


def cmd_devices(args: argparse.Namespace) -> int:
    store, _registry = _store(args)
    print(f"{'device':20}  {'online':6}  {'transport':9}  {'address':21}  {'last keepalive':25}  model")
    for row in store.devices():
        address = f"{row.host}:{row.port}" if row.host else "-"
        keepalive = row.last_keepalive_at.isoformat(timespec="seconds") if row.last_keepalive_at else "-"
        print(f"{row.id:20}  {'yes' if row.online else 'no':6}  {row.transport or '-':9}  {address:21}  "
              f"{keepalive:25}  {row.manufacturer} {row.model}".rstrip())
    return EXIT_OK


def cmd_channels(args: argparse.Namespace) -> int:
    store, _registry = _store(args)
    assigned = store.assigned()
    print(f"{'channel':20}  {'device':20}  {'status':6}  {'grid':16}  {'tier':9}  name")
    for row in store.channels(args.device):
        camera = assigned.get(row.id)
        if args.unassigned and camera is not None:
            continue
        grid, tier = (camera.grid, camera.tier) if camera else ("unassigned", "-")
        print(f"{row.id:20}  {row.device_id:20}  {row.status or '-':6}  {grid:16}  {tier:9}  {row.name}")
    return EXIT_OK


def cmd_catalog(args: argparse.Namespace) -> int:
    """The device's catalog as last reported (the platform asks for it at every new registration)."""
    store, _registry = _store(args)
    device = store.device(args.device_id)
    if device is None:
        raise JifangError(f"device {args.device_id} is not added: jifang gb28181 add-device {args.device_id}")
    channels = store.channels(args.device_id)
    reported = max((c.updated_at for c in channels), default=None)
    print(f"device {device.id} {device.name} ({device.manufacturer} {device.model} {device.firmware}): "
          f"{len(channels)} channels" + (f", catalog of {reported.isoformat(timespec='seconds')}" if reported else ""))
    for row in channels:
        print(f"  {row.id}  {row.status or '-':4}  ptz={row.ptz_type if row.ptz_type is not None else '-'}  "
              f"{row.name}")
    return EXIT_OK


def cmd_assign(args: argparse.Namespace) -> int:
    store, registry = _store(args)
    row = store.assign(registry, args.channel_id, args.grid, args.tier, args.actor, utc_now(), name=args.name,
                       signage=args.signage == "yes", purpose=args.purpose or "", location=args.location or "")
    print(f"channel {row.id} assigned to grid {row.grid} ({row.tier} tier); the running agent records it "
          "within seconds")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    gb = sub.add_parser("gb28181", help="GB/T 28181 devices and channels").add_subparsers(dest="gb_command",
                                                                                         required=True)
    add = with_config(gb.add_parser("add-device", help="allow a device to register, with its SIP password"))
    add.add_argument("device_id", help="20-digit SIP user ID of the device")
    add.add_argument("--name", default="")
    add.add_argument("--password-env", help="environment variable holding the password (default: ask)")
    add.set_defaults(func=cmd_add_device)
    devices = with_config(gb.add_parser("devices", help="devices: online state, address, last keepalive"))
    devices.set_defaults(func=cmd_devices)
    channels = with_config(gb.add_parser("channels", help="channels of the catalogs, assigned or not"))
    channels.add_argument("--device", help="only this device's channels")
    channels.add_argument("--unassigned", action="store_true", help="only channels not yet recorded")
    channels.set_defaults(func=cmd_channels)
    catalog = with_config(gb.add_parser("catalog", help="a device's catalog as last reported"))
    catalog.add_argument("device_id")
    catalog.set_defaults(func=cmd_catalog)
    assign = with_config(gb.add_parser("assign", help="record a channel: register it in a grid at a tier"))
    assign.add_argument("channel_id")
    assign.add_argument("--grid", required=True)
    assign.add_argument("--tier", required=True, choices=["key", "important", "general"])
    assign.add_argument("--name", help="point name (default: the name in the device's catalog)")
    assign.add_argument("--signage", choices=["yes", "no"], default="no", help="key tier: signage is posted")
    assign.add_argument("--purpose", help="key tier: the purpose of the point")
    assign.add_argument("--location", help="where the point is")
    assign.add_argument("--actor", default=getpass.getuser(), help="who assigns (audit)")
    assign.set_defaults(func=cmd_assign)
