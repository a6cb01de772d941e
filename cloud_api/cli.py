"""`beerflow-cloud`: run the cloud service, issue claim codes, publish signed documents."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence

DEFAULT_DATA = os.environ.get("BEERFLOW_CLOUD_DATA", "/var/lib/beerflow-cloud")


def _db_url(args: argparse.Namespace) -> str:
    return normalise_db_url(
        args.db
        or os.environ.get("BEERFLOW_CLOUD_DB")
        or f"sqlite:///{os.path.join(args.data, 'cloud.db')}"
    )


def normalise_db_url(url: str) -> str:
    """A libpq URI (what CloudNativePG puts in its ``-app`` secret) as a SQLAlchemy URL."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def open_store(data: str, db_url: str) -> object:
    from cloud_api.db import make_engine
    from cloud_api.keys import load_or_create
    from cloud_api.store import CloudStore

    os.makedirs(data, mode=0o700, exist_ok=True)
    return CloudStore(make_engine(db_url), load_or_create(os.path.join(data, "keys.json")))


def admin_token(data: str) -> str:
    path = os.path.join(data, "admin.token")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from cloud_api.app import build_app
    from cloud_api.store import CloudStore

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from cloud_api.metrics import CloudMetrics
    from cloud_api.observability import metrics_app

    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    metrics = CloudMetrics()
    app = build_app(store, admin_token(args.data), metrics, notify_every_s=30.0)
    if args.metrics_port:
        # A second listener for Prometheus inside the cluster; the Ingress never routes to it.
        sidecar = web.AppRunner(metrics_app(metrics), access_log=None)

        async def start_metrics(_: web.Application) -> None:
            await sidecar.setup()
            await web.TCPSite(sidecar, args.host, args.metrics_port).start()

        async def stop_metrics(_: web.Application) -> None:
            await sidecar.cleanup()

        app.on_startup.append(start_metrics)
        app.on_cleanup.append(stop_metrics)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database schema up to date, then exit (the deployment's migration Job)."""
    import sqlalchemy as sa

    from cloud_api.db import make_engine

    engine = make_engine(_db_url(args))
    try:
        tables = sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    print(f"schema up to date on {engine.dialect.name}: {len(tables)} tables")
    return 0


def cmd_init_secrets(args: argparse.Namespace) -> int:
    """Write the cloud's keys and admin token into a new directory (mode 0700, files 0600)."""
    from cloud_api.keys import load_or_create

    if os.path.exists(args.directory) and os.listdir(args.directory):
        print(f"error: {args.directory} exists and is not empty", file=sys.stderr)
        return 1
    os.makedirs(args.directory, mode=0o700, exist_ok=True)
    os.chmod(args.directory, 0o700)
    load_or_create(os.path.join(args.directory, "keys.json"))
    admin_token(args.directory)
    print(
        f"wrote {args.directory}/keys.json and {args.directory}/admin.token; create the secret "
        f"with: kubectl create secret generic beerflow-cloud-keys "
        f"--from-file={args.directory}/keys.json --from-file={args.directory}/admin.token"
    )
    return 0


def cmd_claim_create(args: argparse.Namespace) -> int:
    from cloud_api.store import CloudStore, Refused

    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    try:
        code = store.create_claim(args.tenant, args.venue, args.ttl_hours * 3600)
    except Refused as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(code)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from cloud_api.store import CloudStore

    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    if os.path.isdir(args.file):
        if args.kind != "profiles":
            print("error: a directory can only be published as --kind profiles", file=sys.stderr)
            return 1
        body = profile_set_body(args.file)
    else:
        with open(args.file, encoding="utf-8") as f:
            body = f.read()
    doc = store.publish(args.venue, args.kind, body)
    print(f"published {args.kind} version {doc['version']} for venue {args.venue}")
    return 0


def profile_set_body(directory: str) -> str:
    """A profile set document's body: every ``*.toml`` of the directory by file name."""
    files = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".toml"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                files[name] = f.read()
    return json.dumps({"files": files}, sort_keys=True)


def cmd_fleet(args: argparse.Namespace) -> int:
    from cloud_api.store import CloudStore

    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    print(json.dumps(store.fleet(), indent=2))
    return 0


def cmd_haccp_verify(args: argparse.Namespace) -> int:
    from cloud_api import haccp
    from cloud_api.store import CloudStore

    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    chains = haccp.verify_venue(store.engine, args.venue)
    if not chains:
        print(f"venue {args.venue}: no box and no HACCP records", file=sys.stderr)
        return 1
    ok = True
    for bc in chains:
        anchor = "never anchored"
        if bc.last_anchor is not None:
            a = bc.last_anchor
            anchor = f"last anchor {a['count']} record(s) at {_iso(a['received_at'])}"
        verdict = "intact" if bc.ok else f"BROKEN at record {bc.broken_seq}: {bc.reason}"
        if bc.ok:
            verdict = "intact"
        elif bc.broken_seq is None:
            verdict = f"TAMPERING SUSPECTED: {bc.reason}"
        print(f"{bc.box}: {bc.records} record(s) verified, {verdict}; {anchor}")
        for e in bc.events:
            print(f"  {_iso(e['at'])} {e['kind']}: {e['detail']}")
        ok = ok and bc.ok
    return 0 if ok else 1


def cmd_haccp_report(args: argparse.Namespace) -> int:
    """The inspector's report from the cloud's copy of the chain alone (the box may be gone)."""
    import datetime as dt
    import time
    import zoneinfo

    from cloud_api import haccp
    from cloud_api.store import CloudStore
    from rules.cli import write_report
    from rules.haccp import report
    from rules.haccp.chain import HaccpRecord, MalformedRecord, strict_loads

    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    rows = haccp.venue_records(store.engine, args.venue, limit=50_000_000)
    recs = []
    for r in rows:
        try:
            data = strict_loads(r["data"])
        except MalformedRecord as exc:
            data = {"malformed": str(exc)}
        recs.append(
            HaccpRecord(int(r["seq"]), float(r["ts"]), r["unit"], r["kind"], data, r["hash"])
        )
    tz_name = args.tz
    if tz_name is None:  # the venue's zone, as its units were last described in the chain
        zones = [
            str(r.data.get("timezone"))
            for r in recs
            if r.kind == "unit_config" and r.data.get("timezone")
        ]
        tz_name = zones[-1] if zones else "UTC"
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
        start = dt.datetime.combine(
            dt.date.fromisoformat(args.date_from), dt.time(), tz
        ).timestamp()
        last = dt.date.fromisoformat(args.date_to) + dt.timedelta(days=1)
        end = dt.datetime.combine(last, dt.time(), tz).timestamp()
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chains = haccp.verify_venue(store.engine, args.venue)
    if not chains:
        print(f"venue {args.venue}: no box and no HACCP records", file=sys.stderr)
        return 1
    bad = next((c for c in chains if not c.ok), None)
    anchored = [c.last_anchor for c in chains if c.last_anchor]
    status = report.ChainStatus(
        bad is None,
        sum(c.records for c in chains),
        bad.broken_seq if bad else None,
        bad.reason if bad else "",
        anchored[-1]["count"] if anchored else None,
        anchored[-1]["received_at"] if anchored else None,
    )
    t0 = time.perf_counter()
    rep = report.build(
        recs,
        start,
        end,
        status,
        tz_name,
        args.venue,
        generated_at=time.time(),
        lang=args.lang,
        source="cloud",
    )
    return write_report(rep, args.format, args.output, t0)


def cmd_notify_set(args: argparse.Namespace) -> int:
    from cloud_api import notify
    from cloud_api.store import CloudStore

    recips = []
    for raw in args.recipient:
        rid, sep, url = raw.partition("=")
        if not sep:
            print(f"error: --recipient {rid!r}: use ID=APPRISE_URL", file=sys.stderr)
            return 2
        recips.append({"id": rid, "urls": [url]})
    doc = {
        "recipients": recips,
        "silent_after_s": args.silent_after_min * 60,
        "second_path_after_s": args.second_path_after_min * 60,
    }
    try:
        cfg = notify.parse_config(args.venue, doc)
    except notify.NotifyConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = open_store(args.data, _db_url(args))
    assert isinstance(store, CloudStore)
    notify.save_config(store.engine, cfg)
    print(f"venue {args.venue}: {len(recips)} recipient(s)")
    return 0


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="beerflow-cloud", description=__doc__)
    p.add_argument("--data", default=DEFAULT_DATA, help="data directory (keys, admin token)")
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy or libpq URL (default: $BEERFLOW_CLOUD_DB, else SQLite in the data "
        "directory; postgresql://… in production)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("serve", help="run the HTTP service")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8600)
    s.add_argument("--log-level", default="INFO")
    s.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="also serve /metrics without a token on this port (0: only behind the admin token)",
    )
    s.set_defaults(func=cmd_serve)
    m = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    m.set_defaults(func=cmd_migrate)
    i = sub.add_parser(
        "init-secrets", help="generate the cloud's keys and admin token into a new directory"
    )
    i.add_argument("directory")
    i.set_defaults(func=cmd_init_secrets)
    c = sub.add_parser("claim", help="claim codes for enrolling boxes")
    csub = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    cc = csub.add_parser("create", help="issue a one-time, expiring claim code for a venue")
    cc.add_argument("--tenant", required=True)
    cc.add_argument("--venue", required=True)
    cc.add_argument("--ttl-hours", type=float, default=72.0)
    cc.set_defaults(func=cmd_claim_create)
    pb = sub.add_parser("publish", help="publish a signed, versioned document for a venue")
    pb.add_argument("--venue", required=True)
    pb.add_argument("--kind", required=True, choices=("config", "rules", "profiles"))
    pb.add_argument("file", help="the document; for --kind profiles a directory of profiles")
    pb.set_defaults(func=cmd_publish)
    h = sub.add_parser("haccp", help="venues' HACCP chains: verify, report")
    hsub = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    hv = hsub.add_parser(
        "verify", help="walk a venue's chain and its anchors; exit 1 if not intact"
    )
    hv.add_argument("--venue", required=True)
    hv.set_defaults(func=cmd_haccp_verify)
    hr = hsub.add_parser("report", help="the inspector's report (PDF or CSV) from the cloud's copy")
    hr.add_argument("--venue", required=True)
    hr.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    hr.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD")
    hr.add_argument("--format", choices=["pdf", "csv"], default="pdf")
    hr.add_argument("--lang", choices=["en", "it"], default="en")
    hr.add_argument("--tz", default=None, help="time zone (default: the venue's, from its records)")
    hr.add_argument("--output", "-o", required=True, help="file to write")
    hr.set_defaults(func=cmd_haccp_report)
    n = sub.add_parser("notify", help="the cloud's own notifications for a venue")
    nsub = n.add_subparsers(dest="action", required=True, metavar="ACTION")
    ns = nsub.add_parser("set", help="recipients for silent boxes and alarms not got through")
    ns.add_argument("--venue", required=True)
    ns.add_argument("--recipient", action="append", required=True, help="ID=APPRISE_URL")
    ns.add_argument("--silent-after-min", type=float, default=30.0)
    ns.add_argument("--second-path-after-min", type=float, default=10.0)
    ns.set_defaults(func=cmd_notify_set)
    f = sub.add_parser("fleet", help="every box: online, last seen, backlog, versions")
    f.set_defaults(func=cmd_fleet)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
