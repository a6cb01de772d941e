"""`beerflow-edge`: run the agent, check configs and profiles, look at what the box recorded."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from edge_agent.errors import EdgeError, ValidationError

DEFAULT_CONFIG = os.environ.get("BEERFLOW_CONFIG", "/etc/beerflow/venue.toml")

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def _fmt_ts(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_value(v: Any, unit: str) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)
    return f"{s} {unit}".strip()


def _report_invalid(exc: ValidationError, what: str) -> int:
    print(f"{what}: {len(exc.issues)} problem(s):", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue}", file=sys.stderr)
    return EXIT_INVALID


def _load(path: str) -> Any:
    from edge_agent.config.loader import load_config

    return load_config(path)


# ---- commands ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from beerflow_edge.agent import Agent
    from edge_agent.logging_setup import setup_logging
    from firmware_profiles.loader import load_library

    setup_logging(args.log_level, args.log_json)
    try:
        cfg = _load(args.config)
        library = load_library(cfg.profiles.dirs)
    except ValidationError as exc:
        return _report_invalid(exc, f"refusing to start: {args.config}")
    return asyncio.run(Agent(cfg, library).run())


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.file)
    except ValidationError as exc:
        return _report_invalid(exc, args.file)
    print(
        f"{args.file}: OK: venue {cfg.venue.id!r}, {len(cfg.devices)} device(s), "
        f"{len(cfg.buses)} bus(es); store at {cfg.storage.path}"
    )
    return EXIT_OK


def _api_get(socket_path: str, path: str) -> Any:
    import aiohttp

    async def go() -> Any:
        conn = aiohttp.UnixConnector(path=socket_path)
        timeout = aiohttp.ClientTimeout(total=3)
        async with (
            aiohttp.ClientSession(connector=conn, timeout=timeout) as s,
            s.get(f"http://agent{path}") as r,
        ):
            r.raise_for_status()
            return await r.json()

    return asyncio.run(go())


def cmd_status(args: argparse.Namespace) -> int:
    import dataclasses

    from edge_agent.store.reader import StoreReader

    try:
        cfg = _load(args.config)
    except ValidationError as exc:
        return _report_invalid(exc, args.config)
    live: dict[str, Any] | None = None
    devices: list[dict[str, Any]] = []
    if os.path.exists(cfg.api.socket):
        try:
            live = _api_get(cfg.api.socket, "/health")
            devices = _api_get(cfg.api.socket, "/devices")["devices"]
        except Exception as exc:  # any failure means "not running", and we say so
            print(f"agent API not answering ({exc}); showing the store only", file=sys.stderr)
            live = None
    summary = None
    store_error = None
    try:
        with StoreReader(cfg.storage.path) as r:
            summary = r.summary()
    except EdgeError as exc:
        store_error = str(exc)
    if args.json:
        out = {
            "venue": {"id": cfg.venue.id, "name": cfg.venue.name},
            "agent": live,
            "devices": devices,
            "store": dataclasses.asdict(summary) if summary else {"error": store_error},
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    print(f"Venue: {cfg.venue.name} ({cfg.venue.id})")
    if live is not None:
        print(
            f"Agent: running {live['version']} ({live['status']}), up {live['uptime_s']:.0f} s, "
            f"{live['devices']['connected']}/{live['devices']['total']} devices connected"
        )
        for name in live.get("degraded", []):
            st = live["services"][name]
            err = f": {st['last_error']}" if st.get("last_error") else ""
            print(
                f"  DEGRADED service {name}: {st['state']} "
                f"(restarts {st['restarts']}, crashes {st['crashes']}, stalls {st['stalls']}){err}"
            )
        for d in devices:
            state = "connected" if d.get("connected") else "OFFLINE"
            seen = _fmt_ts(d["last_seen"]) if d.get("last_seen") else "never"
            err = f"  last error: {d['last_error']}" if d.get("last_error") else ""
            print(f"  {d['id']:<24} {state:<10} last seen {seen}  errors {d.get('errors', 0)}{err}")
    else:
        print("Agent: not running")
    if summary is None:
        print(f"Store: {store_error}")
        return EXIT_OK
    newest = _fmt_ts(summary.newest_reading) if summary.newest_reading else "-"
    print(
        f"Store: {summary.path} ({summary.size_bytes / 1e6:.1f} MB): {summary.readings} readings "
        f"in {summary.series} series, {summary.rollups} rollups, {summary.events} events; "
        f"newest reading {newest}"
    )
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 once the running agent's /health is ok (the package's upgrade check uses this)."""
    import time

    try:
        cfg = _load(args.config)
    except ValidationError as exc:
        return _report_invalid(exc, args.config)
    deadline = time.monotonic() + args.wait
    last = "agent API not answering"
    while True:
        try:
            health = _api_get(cfg.api.socket, "/health")
            if health.get("status") == "ok":
                print(f"ok: agent {health['version']}, up {health['uptime_s']:.0f} s")
                return EXIT_OK
            last = f"status {health.get('status')!r}"
        except Exception as exc:  # not up yet, or not at all: keep asking until the deadline
            last = f"agent API not answering ({exc})"
        if time.monotonic() >= deadline:
            print(f"unhealthy: {last}", file=sys.stderr)
            return EXIT_FAILURE
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def cmd_readings(args: argparse.Namespace) -> int:
    from edge_agent.store.reader import StoreReader

    try:
        cfg = _load(args.config)
    except ValidationError as exc:
        return _report_invalid(exc, args.config)
    try:
        with StoreReader(cfg.storage.path) as r:
            if args.device not in r.devices() and cfg.device(args.device) is None:
                print(f"unknown device {args.device!r}", file=sys.stderr)
                return EXIT_INVALID
            rows = (
                r.latest(args.device)
                if args.latest
                else r.readings(args.device, point=args.point, limit=args.limit)
            )
    except EdgeError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "point": x.point,
                        "ts": x.ts,
                        "value": x.value,
                        "unit": x.unit,
                        "quality": x.quality.name.lower(),
                    }
                    for x in rows
                ]
            )
        )
        return EXIT_OK
    if not rows:
        print(f"no readings for {args.device} yet")
        return EXIT_OK
    for x in reversed(rows):
        q = "" if x.quality == 0 else f" ({x.quality.name.lower()})"
        print(f"{_fmt_ts(x.ts)}  {x.point:<20} {_fmt_value(x.value, x.unit)}{q}")
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace) -> int:
    from firmware_profiles.loader import load_library, load_profile

    if args.action == "check":
        bad = 0
        for f in args.files:
            try:
                p = load_profile(f)
                print(f"{f}: OK ({p.vendor} {p.model}, {len(p.points)} points)")
            except ValidationError as exc:
                bad += 1
                _report_invalid(exc, f)
        return EXIT_INVALID if bad else EXIT_OK
    try:
        lib = load_library(args.dir or ())
    except ValidationError as exc:
        return _report_invalid(exc, "profile library")
    if args.action == "list":
        for p in lib:
            print(
                f"{p.id:<22} {p.transport:<8} {p.vendor} {p.model} (firmware {p.firmware}) "
                f"[{p.verification}]"
            )
        return EXIT_OK
    prof = lib.get(args.id)
    if prof is None:
        print(f"unknown profile {args.id!r}{lib.suggest(args.id)}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{prof.id}: {prof.vendor} {prof.model}, firmware {prof.firmware}, {prof.transport}")
    print(f"  {prof.description}")
    print(f"  source: {lib.sources[prof.id]}  verification: {prof.verification}")
    for pt in prof.points:
        print(f"  {pt.name:<18} {pt.kind:<15} {pt.unit:<4} {getattr(pt, 'where', '')}")
    commands = getattr(prof.section, "commands", ())
    if commands:
        print("  commands:")
        for c in commands:
            print(f"    {c.name}: {getattr(c, 'description', '')}")
    return EXIT_OK


def _unit_range(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    if not out or min(out) < 1 or max(out) > 247:
        raise argparse.ArgumentTypeError("unit ids are 1-247, e.g. 1-32 or 1,5,9")
    return out


async def _discover(args: argparse.Namespace, cfg: Any) -> list[dict[str, Any]]:
    import importlib

    found: list[dict[str, Any]] = []

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    async def run(transport: str, what: str, fn: str, *call: Any, **kw: Any) -> None:
        try:
            module = importlib.import_module(f"drivers.{transport}.discovery")
        except ImportError:
            say(f"{what}: {transport} discovery is not available in this build")
            return
        say(f"{what}: scanning…")
        try:
            result = await getattr(module, fn)(*call, **kw)
        except EdgeError as exc:
            say(f"{what}: failed: {exc}")
            return
        items = [result] if isinstance(result, dict) else list(result or [])
        known = sum(1 for item in items if item.get("profile"))
        unknown = len(items) - known
        say(
            f"{what}: {known} device(s) recognised"
            + (f", {unknown} answered but not recognised" if unknown else "")
        )
        found.extend(items)

    for target in args.modbus_tcp or ():
        host, _, port = target.partition(":")
        await run(
            "modbus", f"Modbus TCP {target}", "discover_tcp", host, int(port or 502), args.units
        )
    for bus_id in args.modbus_bus or ():
        bus = cfg.bus(bus_id) if cfg else None
        if bus is None:
            say(f"Modbus RTU: no bus {bus_id!r} in the config")
            continue
        await run("modbus", f"Modbus RTU {bus_id}", "discover_rtu", bus, args.units)
    if args.ble:
        adapter = cfg.ble.adapter if cfg else "hci0"
        await run("ble", f"BLE {adapter}", "discover", adapter, args.seconds)
    for broker_id in args.mqtt or ():
        broker = cfg.broker(broker_id) if cfg else None
        if broker is None:
            say(f"MQTT: no broker {broker_id!r} in the config")
            continue
        await run("mqtt", f"MQTT {broker_id}", "discover", broker, args.seconds)
    identity = None
    if args.opcua and cfg is not None:
        # The box's own certificate (made now if the agent has not run yet), so a server that
        # accepts only secure sessions can be browsed; trust it on the server first.
        from drivers.opcua.certs import box_application_uri, box_pki_dir, ensure_identity

        identity = ensure_identity(box_pki_dir(cfg.storage.path), box_application_uri(cfg.venue.id))
        say(f"OPC-UA: using the box's certificate {identity.cert_path} ({identity.thumbprint})")
    for url in args.opcua or ():
        await run("opcua", f"OPC-UA {url}", "discover", url, identity=identity)
    for port in args.serial or ():
        await run("serial", f"serial {port}", "probe", port)
    return found


def cmd_discover(args: argparse.Namespace) -> int:
    import dataclasses

    from beerflow_edge.discovery import merge_proposals
    from edge_agent.config.model import DeviceConfig

    cfg = None
    if args.config and os.path.exists(args.config):
        try:
            cfg = _load(args.config)
        except ValidationError as exc:
            return _report_invalid(exc, args.config)
    if not any((args.modbus_tcp, args.modbus_bus, args.ble, args.mqtt, args.opcua, args.serial)):
        print(
            "nothing to scan: give --modbus-tcp, --modbus-bus, --ble, --mqtt, --opcua or --serial",
            file=sys.stderr,
        )
        return EXIT_INVALID
    found = asyncio.run(_discover(args, cfg))
    device_keys = {f.name for f in dataclasses.fields(DeviceConfig)} | {"_bus", "_broker"}
    proposals = []
    for p in found:
        where = ", ".join(
            f"{k}={p[k]}"
            for k in ("host", "port", "bus", "unit_id", "address", "broker")
            if p.get(k) is not None
        )
        if not p.get("profile"):
            print(f"  {'(unrecognised)':<24} {'-':<22} {where}")
            continue
        print(f"  {p.get('id') or '?':<24} {p['profile']:<22} {where}")
        # helpers may add scores or candidates for display; only config keys are merged
        proposals.append({k: v for k, v in p.items() if k in device_keys})
    found = proposals
    if args.write is None:
        if found:
            print("(add --write FILE to merge these into a venue config)")
        return EXIT_OK
    existing = ""
    if os.path.exists(args.write):
        with open(args.write, encoding="utf-8") as fh:
            existing = fh.read()
    text, added = merge_proposals(existing, found)
    if not added:
        print(f"{args.write}: nothing new to add")
        return EXIT_OK
    from edge_agent.config.loader import load_config_text

    try:
        load_config_text(text, args.write)
    except ValidationError as exc:
        _report_invalid(exc, f"{args.write} (after merging; not written)")
        return EXIT_INVALID
    tmp = args.write + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, args.write)
    print(f"{args.write}: added {', '.join(added)}")
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
    except ValidationError as exc:
        return _report_invalid(exc, args.config)
    from tui.app import run_tui

    return run_tui(cfg.api.socket, args.locale or cfg.venue.locale, cfg.venue.temperature_unit)


def cmd_staff_hash_pin(args: argparse.Namespace) -> int:
    """Read a PIN twice without echo; print the `pin_hash = "..."` line for a [[staff]] entry."""
    import getpass

    from edge_agent.staff import hash_pin

    pin = getpass.getpass("PIN (4-12 digits): ")
    if getpass.getpass("PIN again: ") != pin:
        print("error: the two PINs differ", file=sys.stderr)
        return 2
    try:
        line = hash_pin(pin)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f'pin_hash = "{line}"')
    return EXIT_OK


def _passphrase(args: argparse.Namespace, twice: bool) -> str:
    import getpass

    if args.passphrase_file:
        with open(args.passphrase_file, encoding="utf-8") as fh:
            return fh.readline().rstrip("\n")
    first = getpass.getpass("backup passphrase: ")
    if twice and getpass.getpass("again: ") != first:
        raise EdgeError("the two passphrases differ")
    return first


def cmd_backup(args: argparse.Namespace) -> int:
    from beerflow_edge.backup import create_backup

    passphrase = _passphrase(args, twice=True)
    tmp = args.file + ".partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            m = create_backup(args.config, out, passphrase)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, args.file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    size = os.path.getsize(args.file)
    print(
        f"{args.file}: venue {m.venue}, store schema {m.schema_version}, "
        f"{m.haccp_records} HACCP records, {len(m.files)} files, {size / 1e6:.1f} MB encrypted"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from beerflow_edge.backup import BackupError, restore_backup

    passphrase = _passphrase(args, twice=False)

    def line_up_with_cloud(store: Path, sync_dir: Path) -> None:
        import sqlite3

        from cloud_sync.identity import load
        from cloud_sync.realign import fetch_watermarks, realign

        ident = load(str(sync_dir / "identity.json")) if sync_dir.is_dir() else None
        if ident is None or not ident.enrolled:
            return
        if args.no_cloud:
            print(
                "warning: not lined up with the cloud (--no-cloud): if the cloud holds records "
                "written after this backup, new records may reuse their sequence numbers",
                file=sys.stderr,
            )
            return
        try:
            marks = asyncio.run(fetch_watermarks(ident))
        except Exception as exc:  # any failure to ask the cloud refuses the restore
            raise BackupError(
                f"cannot ask the cloud ({ident.cloud_url}) what it already holds: {exc}; "
                "nothing restored (retry online, or --no-cloud to accept the risk)"
            ) from exc
        conn = sqlite3.connect(store, isolation_level=None)
        try:
            for r in realign(conn, marks):
                if r.skipped or r.dropped:
                    print(
                        f"  {r.stream}: cloud holds up to {r.cloud_watermark}; "
                        f"{r.dropped} pending record(s) already there, "
                        f"{r.skipped} written after the backup"
                    )
        finally:
            conn.close()

    with open(args.file, "rb") as src:
        r = restore_backup(src, passphrase, args.config_dir, line_up_with_cloud)
    print(
        f"restored venue {r.manifest.venue} (backup of "
        f"{_fmt_ts(r.manifest.created)}): config {r.config_path}, store {r.store_path}, "
        f"HACCP chain verified ({r.haccp_records} records)"
        + (", identity and keys" if r.identity_restored else "")
    )
    return EXIT_OK


UNITS = ("beerflow-agent.service", "beerflow-kiosk.service")


def journal_argv(args: argparse.Namespace) -> list[str]:
    """The journalctl command line for `beerflow-edge logs` (the agent logs to journald)."""
    argv = ["journalctl", "--no-pager"]
    for unit in UNITS if args.all else UNITS[:1]:
        argv += ["--unit", unit]
    argv += ["--output", "json" if args.json else "short-iso"]
    if args.follow:
        argv.append("--follow")
    if args.since:
        argv += ["--since", args.since]
    if args.priority:
        argv += ["--priority", args.priority]
    argv += ["--lines", str(args.lines)]
    return argv


def cmd_logs(args: argparse.Namespace) -> int:
    import shutil

    argv = journal_argv(args)
    if shutil.which(argv[0]) is None:
        print("journalctl not found: logs are in journald on an installed box", file=sys.stderr)
        return EXIT_FAILURE
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def parse_assignment(text: str) -> tuple[str, Any]:
    """`ARG=VALUE`: VALUE is a number, true/false, or else text (quotes optional)."""
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{text!r} is not ARG=VALUE")
    raw = raw.strip()
    if raw in ("true", "false"):
        return key.strip(), raw == "true"
    try:
        number = json.loads(raw)
    except ValueError:
        number = None
    if isinstance(number, int | float) and not isinstance(number, bool):
        return key.strip(), number
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    return key.strip(), raw


def cmd_command(args: argparse.Namespace) -> int:
    """Send one command to a device through the running agent, signed with a staff PIN."""
    import getpass

    import aiohttp

    try:
        cfg = _load(args.config)
    except ValidationError as exc:
        return _report_invalid(exc, args.config)
    try:
        values = dict(parse_assignment(a) for a in args.args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not os.path.exists(cfg.api.socket):
        print(f"error: the agent is not running (no {cfg.api.socket})", file=sys.stderr)
        return EXIT_FAILURE
    if args.pin_stdin:
        pin = sys.stdin.readline().rstrip("\r\n")
    else:
        pin = getpass.getpass(f"PIN for {args.staff}: ")
    body = {"command": args.command_name, "args": values, "staff_id": args.staff, "pin": pin}

    async def go() -> tuple[int, Any]:
        conn = aiohttp.UnixConnector(path=cfg.api.socket)
        timeout = aiohttp.ClientTimeout(total=150)
        async with (
            aiohttp.ClientSession(connector=conn, timeout=timeout) as s,
            s.post(f"http://agent/devices/{args.device}/commands", json=body) as r,
        ):
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    try:
        status, reply = asyncio.run(go())
    except (aiohttp.ClientError, OSError) as exc:
        print(f"error: cannot reach the agent: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if not isinstance(reply, dict):
        print(f"error: {str(reply).strip()}", file=sys.stderr)
        return EXIT_INVALID if status in (400, 401, 404, 409, 429) else EXIT_FAILURE
    if reply.get("ok"):
        value = reply.get("value")
        print(
            f"{args.device}: {args.command_name} done"
            + (f", reads {value}" if value is not None else "")
        )
        return EXIT_OK
    print(f"{args.device}: {args.command_name} failed: {reply.get('error')}", file=sys.stderr)
    return EXIT_FAILURE


def _simulators_missing() -> bool:
    """True (and says why) where the simulators are not installed, as on a venue box."""
    if importlib.util.find_spec("simulators") is not None:
        return False
    print(
        "error: the simulated devices are not installed here (a venue box ships without them);"
        " run the demo from a source checkout: make demo",
        file=sys.stderr,
    )
    return True


def cmd_demo(args: argparse.Namespace) -> int:
    if _simulators_missing():
        return EXIT_FAILURE
    from beerflow_edge.demo import run_demo
    from edge_agent.logging_setup import setup_logging

    setup_logging(args.log_level, args.log_json)
    return asyncio.run(
        run_demo(args.dir, devices=args.devices, duration=args.duration, speed=args.speed)
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    if _simulators_missing():
        return EXIT_FAILURE
    from beerflow_edge.demo import run_simulators
    from edge_agent.logging_setup import setup_logging

    setup_logging(args.log_level, False)
    return asyncio.run(
        run_simulators(args.count, base_port=args.base_port, seed=args.seed, speed=args.speed)
    )


# ---- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="beerflow-edge",
        description="BeerFlow Edge venue box: drivers, local store, local API.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def logging_opts(sp: argparse.ArgumentParser, level: str = "INFO") -> None:
        sp.add_argument("--log-level", default=level, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        sp.add_argument("--log-json", action="store_true", help="one JSON object per log line")

    def config_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            "-c",
            default=DEFAULT_CONFIG,
            help=f"venue config file (default: $BEERFLOW_CONFIG or {DEFAULT_CONFIG})",
        )

    r = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT")
    config_opt(r)
    logging_opts(r)
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("config", help="venue config tools")
    csub = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    cc = csub.add_parser("check", help="validate a venue config; exit 2 with every problem found")
    cc.add_argument("file")
    cc.set_defaults(func=cmd_config_check)

    s = sub.add_parser("status", help="is the agent running, are devices answering, store size")
    config_opt(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    hc = sub.add_parser("health", help="exit 0 when the running agent reports itself healthy")
    config_opt(hc)
    hc.add_argument("--wait", type=float, default=0.0, help="keep asking for up to S seconds")
    hc.set_defaults(func=cmd_health)

    rd = sub.add_parser("readings", help="recorded readings of one device, oldest first")
    config_opt(rd)
    rd.add_argument("--device", "-d", required=True)
    rd.add_argument("--point", "-p")
    rd.add_argument("--limit", "-n", type=int, default=40)
    rd.add_argument("--latest", action="store_true", help="only the latest value of each point")
    rd.add_argument("--json", action="store_true")
    rd.set_defaults(func=cmd_readings)

    pr = sub.add_parser("profiles", help="device profile library")
    psub = pr.add_subparsers(dest="action", required=True, metavar="ACTION")
    pl = psub.add_parser("list", help="every known profile")
    pl.add_argument("--dir", action="append", help="extra profile directory")
    ps = psub.add_parser("show", help="one profile's points and commands")
    ps.add_argument("id")
    ps.add_argument("--dir", action="append", help="extra profile directory")
    pc = psub.add_parser("check", help="validate profile files")
    pc.add_argument("files", nargs="+")
    pr.set_defaults(func=cmd_profiles)

    t = sub.add_parser("tui", help="the kitchen terminal (talks to the running agent)")
    config_opt(t)
    t.add_argument("--locale", choices=["en", "it"], help="override the venue's language")
    t.set_defaults(func=cmd_tui)

    st = sub.add_parser("staff", help="staff PINs for the kitchen terminal")
    stsub = st.add_subparsers(dest="action", required=True, metavar="ACTION")
    sth = stsub.add_parser("hash-pin", help="hash a PIN (read without echo) for [[staff]] pin_hash")
    sth.set_defaults(func=cmd_staff_hash_pin)

    cm = sub.add_parser(
        "command",
        help="send a command to a device (staff PIN required; the outcome is recorded)",
        description="Send COMMAND to DEVICE through the running agent, e.g. "
        "`beerflow-edge command combi-1 start_program program='Roast chicken' mode=combi_steaming"
        " temperature=160 duration_s=3600 core_target=74 --staff chef-ana`. The PIN is read "
        "without echo (or one line from stdin with --pin-stdin).",
    )
    config_opt(cm)
    cm.add_argument("device")
    cm.add_argument("command_name", metavar="COMMAND")
    cm.add_argument("args", nargs="*", metavar="ARG=VALUE")
    cm.add_argument("--staff", required=True, help="your staff ID from the venue config")
    cm.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin")
    cm.set_defaults(func=cmd_command)

    dv = sub.add_parser("discover", help="find devices and propose venue-config entries")
    dv.add_argument(
        "--config",
        "-c",
        default=None,
        help="venue config (for bus/broker definitions and the BLE adapter)",
    )
    dv.add_argument("--modbus-tcp", action="append", metavar="HOST[:PORT]")
    dv.add_argument(
        "--modbus-bus",
        action="append",
        metavar="BUS_ID",
        help="scan an RS-485 bus defined in the config",
    )
    dv.add_argument(
        "--units",
        type=_unit_range,
        default=list(range(1, 33)),
        help="Modbus unit ids to try (default 1-32)",
    )
    dv.add_argument("--ble", action="store_true", help="listen for BLE sensors")
    dv.add_argument(
        "--mqtt",
        action="append",
        metavar="BROKER_ID",
        help="listen for Shelly/Tasmota/Zigbee2MQTT announcements",
    )
    dv.add_argument("--opcua", action="append", metavar="URL", help="browse an OPC-UA server")
    dv.add_argument("--serial", action="append", metavar="PORT", help="probe for a scale")
    dv.add_argument("--seconds", type=float, default=10.0, help="listening time for BLE/MQTT")
    dv.add_argument(
        "--write",
        metavar="FILE",
        help="merge new devices into this venue config (existing entries untouched)",
    )
    dv.set_defaults(func=cmd_discover)

    bk = sub.add_parser("backup", help="store, identity and venue files in one encrypted file")
    config_opt(bk)
    bk.add_argument("file")
    bk.add_argument("--passphrase-file", help="first line is the passphrase (else asked twice)")
    bk.set_defaults(func=cmd_backup)

    rs = sub.add_parser("restore", help="restore a backup onto a fresh box or directory")
    rs.add_argument("file")
    rs.add_argument(
        "--config-dir",
        default=os.path.dirname(DEFAULT_CONFIG),
        help="where the venue files go (the store goes where the restored config says)",
    )
    rs.add_argument("--passphrase-file", help="first line is the passphrase (else asked)")
    rs.add_argument(
        "--no-cloud",
        action="store_true",
        help="restore without asking the cloud what it already holds (see docs/install.md)",
    )
    rs.set_defaults(func=cmd_restore)

    lg = sub.add_parser("logs", help="the agent's log from journald (installed box)")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    lg.add_argument("--since", help='e.g. "1 hour ago", "today", "2026-12-04 08:00"')
    lg.add_argument(
        "--priority", "-p", choices=["err", "warning", "info", "debug"], help="this level and worse"
    )
    lg.add_argument("--lines", "-n", type=int, default=200, help="last N lines (default 200)")
    lg.add_argument("--all", action="store_true", help="the kiosk terminal's log too")
    lg.add_argument("--json", action="store_true", help="journald's JSON export, one per line")
    lg.set_defaults(func=cmd_logs)

    d = sub.add_parser("demo", help="a simulated venue, the agent, its events and status")
    d.add_argument("--dir", default="demo-venue", help="where the demo config and store go")
    d.add_argument("--devices", type=int, default=4, help="simulated fridges (default 4)")
    d.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    d.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated minutes per real second x60 (default 60: an hour a minute)",
    )
    # The demo prints its own events and status; log lines only when something is wrong.
    logging_opts(d, "WARNING")
    d.set_defaults(func=cmd_demo)

    from cloud_sync.cli import add_commands as add_sync_commands
    from rules.cli import add_commands as add_rules_commands

    add_rules_commands(sub)
    add_sync_commands(sub)

    sm = sub.add_parser("simulate", help="serve simulated Modbus fridges until interrupted")
    sm.add_argument("--count", type=int, default=1)
    sm.add_argument("--base-port", type=int, default=15020)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument("--speed", type=float, default=1.0)
    sm.add_argument("--log-level", default="WARNING")
    sm.set_defaults(func=cmd_simulate)
    return p


def _version() -> str:
    from edge_agent import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
