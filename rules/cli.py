"""`beerflow-edge rules check|replay` and `beerflow-edge haccp verify|report`."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sys
import zoneinfo
from typing import Any

from edge_agent.errors import EdgeError, Issue, ValidationError
from edge_agent.messages import Reading

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def _invalid(exc: ValidationError, what: str) -> int:
    print(f"{what}: {len(exc.issues)} problem(s):", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue}", file=sys.stderr)
    return EXIT_INVALID


def _default_config() -> str:
    return os.environ.get("BEERFLOW_CONFIG", "/etc/beerflow/venue.toml")


def cmd_rules_check(args: argparse.Namespace) -> int:
    from rules.model import load_rules

    try:
        rf = load_rules(args.file, args.region)
    except ValidationError as exc:
        return _invalid(exc, args.file)
    from_units = sum(1 for r in rf.rules if r.unit and r.description.startswith("HACCP"))
    print(
        f"{args.file}: OK: {len(rf.rules)} rule(s) ({from_units} from {len(rf.haccp.units)} "
        f"HACCP unit(s), region {rf.haccp.region or args.region}), "
        f"{sum(1 for r in rf.rules if not r.enabled)} disabled"
    )
    return EXIT_OK


def _parse_ts(raw: str, tz: zoneinfo.ZoneInfo) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    t = dt.datetime.fromisoformat(raw)
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.timestamp()


def _parse_value(raw: str) -> Any:
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(raw)
    except ValueError:
        return raw


def read_csv(path: str, tz: zoneinfo.ZoneInfo) -> list[Reading]:
    """ts (unix seconds or ISO 8601), device, point, value — a header row names them."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return _read_rows(csv.DictReader(fh), path, tz)
    except OSError as exc:
        raise ValidationError([Issue(path, None, "", f"cannot read: {exc.strerror}")]) from exc


def _read_rows(rows: csv.DictReader[str], path: str, tz: zoneinfo.ZoneInfo) -> list[Reading]:
    out: list[Reading] = []
    issues: list[Issue] = []
    missing = {"ts", "device", "point", "value"} - set(rows.fieldnames or ())
    if missing:
        raise ValidationError([Issue(path, 1, "header", f"missing column(s) {sorted(missing)}")])
    for row in rows:
        try:
            ts = _parse_ts(row["ts"], tz)
        except (ValueError, TypeError):
            issues.append(Issue(path, rows.line_num, "ts", f"not a time: {row['ts']!r}"))
            continue
        out.append(Reading(row["device"], row["point"], _parse_value(row["value"]), ts))
    if issues:
        raise ValidationError(issues)
    out.sort(key=lambda r: r.ts)
    return out


def cmd_rules_replay(args: argparse.Namespace) -> int:
    from rules.replay import replay

    tz = zoneinfo.ZoneInfo(args.tz)
    try:
        from rules.model import load_rules

        rf = load_rules(args.file, args.region)
        readings = read_csv(args.data, tz)
    except ValidationError as exc:
        return _invalid(exc, "replay")
    lines = replay(rf, readings, args.tz)
    for line in lines:
        print(line)
    print(f"{len(readings)} readings replayed; {sum(1 for x in lines if ' FIRE ' in x)} firing(s)")
    return EXIT_OK


def _store_path(config: str) -> tuple[str, Any]:
    from edge_agent.config.loader import load_config

    cfg = load_config(config)
    return cfg.storage.path, cfg


def _receipt_verifier(store_path: str) -> Any | None:
    """Checks a receipt's signature with the cloud key pinned at enrolment, if this box has one."""
    try:
        from cloud_sync import crypto
        from cloud_sync.errors import SyncError
        from cloud_sync.identity import load
        from cloud_sync.paths import identity_path
    except ImportError:  # a box built without the sync stack
        return None
    try:
        ident = load(identity_path(store_path))
    except SyncError:
        return None
    if ident is None or not ident.cloud_sign_pub:
        return None
    pub = crypto.unb64(ident.cloud_sign_pub)

    def check(message: bytes, sig: str) -> bool:
        try:
            return crypto.verify(pub, crypto.unb64(sig), message)
        except ValueError:
            return False

    return check


def _kept_receipt(store_path: str) -> Any | None:
    try:
        from cloud_sync.haccp_stream import read_receipt_file, receipt_path
    except ImportError:
        return None
    return read_receipt_file(receipt_path(store_path))


def verify_store(path: str) -> tuple[bool, list[str]]:
    """The chain walked record by record, then set against the cloud's last receipt."""
    from edge_agent.store.schema import connect
    from rules.haccp import anchor, chain

    conn = connect(path, readonly=True)
    try:
        v = chain.verify(conn)
        rc = anchor.check_against_receipt(conn, _receipt_verifier(path), _kept_receipt(path))
    finally:
        conn.close()
    lines = []
    if v.ok:
        lines.append(f"HACCP log intact: {v.records} record(s), hash chain verified")
    else:
        lines.append(
            f"HACCP log BROKEN at record {v.broken_seq}: {v.reason} "
            f"({v.records} record(s) before it verified)"
        )
    if rc.receipt is not None:
        when = dt.datetime.fromtimestamp(rc.receipt.received_at, dt.UTC).isoformat(
            timespec="seconds"
        )
        lines.append(f"cloud anchor of {when}: {rc.detail}")
    else:
        lines.append(f"cloud anchor: {rc.detail}")
    return v.ok and rc.ok, lines


def cmd_haccp_verify(args: argparse.Namespace) -> int:
    try:
        path, _ = _store_path(args.config)
    except ValidationError as exc:
        return _invalid(exc, args.config)
    if not os.path.exists(path):
        print(f"error: no store at {path}", file=sys.stderr)
        return EXIT_FAILURE
    ok, lines = verify_store(path)
    for line in lines:
        print(line)
    return EXIT_OK if ok else EXIT_FAILURE


def _day(raw: str, tz: zoneinfo.ZoneInfo) -> float:
    return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), tz).timestamp()


def box_chain_status(conn: Any, store_path: str) -> Any:
    """The report's chain line: the walk, then the last cloud receipt."""
    from rules.haccp import anchor, chain
    from rules.haccp.report import ChainStatus

    v = chain.verify(conn)
    rc = anchor.check_against_receipt(
        conn, _receipt_verifier(store_path), _kept_receipt(store_path)
    )
    st = ChainStatus(v.ok and rc.ok, v.records, v.broken_seq, v.reason)
    if rc.receipt is not None:
        st.anchor_count, st.anchor_at = rc.receipt.anchor.count, rc.receipt.received_at
    if not rc.ok:
        st.reason = (st.reason + "; " if st.reason else "") + rc.detail
    st.anchor_note = "" if rc.ok else rc.detail
    return st


def cmd_haccp_report(args: argparse.Namespace) -> int:
    import time

    from edge_agent.store.schema import connect
    from rules.haccp import chain, report

    try:
        path, cfg = _store_path(args.config)
    except ValidationError as exc:
        return _invalid(exc, args.config)
    tz = zoneinfo.ZoneInfo(cfg.venue.timezone)
    try:
        start = _day(args.date_from, tz)
        end = _day(args.date_to, tz) + 86400  # --to is inclusive
    except ValueError as exc:
        print(f"error: dates must be YYYY-MM-DD: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not os.path.exists(path):
        print(f"error: no store at {path}", file=sys.stderr)
        return EXIT_FAILURE
    signoff_days = 7
    try:
        from rules.model import load_rules, venue_rules_path

        rules_path = venue_rules_path(cfg.source or args.config)
        if os.path.exists(rules_path):
            signoff_days = load_rules(rules_path, cfg.venue.food_safety_region).haccp.signoff_days
    except ValidationError:
        pass  # the report does not need the rules to be valid
    conn = connect(path, readonly=True)
    try:
        status = box_chain_status(conn, path)
        recs = list(chain.records(conn, None, end))
    finally:
        conn.close()
    t0 = time.perf_counter()
    rep = report.build(
        recs,
        start,
        end,
        status,
        cfg.venue.timezone,
        cfg.venue.name,
        generated_at=time.time(),
        lang=args.lang,
        signoff_days=signoff_days,
    )
    return write_report(rep, args.format, args.output, t0)


def write_report(rep: Any, fmt: str, output: str | None, t0: float) -> int:
    import time

    from rules.haccp import report

    data = report.to_pdf(rep) if fmt == "pdf" else report.to_csv(rep).encode("utf-8")
    if output:
        with open(output, "wb") as fh:
            fh.write(data)
        print(
            f"wrote {output} ({len(rep.records)} records, chain "
            f"{'intact' if rep.chain.ok else 'BROKEN'}) in {time.perf_counter() - t0:.2f} s",
            file=sys.stderr,
        )
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK if rep.chain.ok else EXIT_FAILURE


def cmd_notify_test(args: argparse.Namespace) -> int:
    import asyncio

    from rules.model import load_rules, venue_rules_path
    from rules.notify.service import send_test

    try:
        _, cfg = _store_path(args.config)
        rules_file = venue_rules_path(cfg.source or args.config)
        rf = load_rules(rules_file, cfg.venue.food_safety_region)
    except ValidationError as exc:
        return _invalid(exc, args.config)
    if not rf.notify.recipients:
        print(f"no [[notify.recipients]] in {rules_file}: nobody to notify", file=sys.stderr)
        return EXIT_FAILURE
    results = asyncio.run(send_test(rf.notify))
    for rid, (ok, why) in results.items():
        print(f"{rid}: {'sent' if ok else 'FAILED: ' + why}")
    return EXIT_OK if all(ok for ok, _ in results.values()) else EXIT_FAILURE


def add_commands(subparsers: Any) -> None:
    def config_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            "-c",
            default=_default_config(),
            help="venue config file (default: $BEERFLOW_CONFIG)",
        )

    ru = subparsers.add_parser("rules", help="automation rule files")
    rsub = ru.add_subparsers(dest="action", required=True, metavar="ACTION")
    rc = rsub.add_parser("check", help="validate a rule file; exit 2 with every problem found")
    rc.add_argument("file")
    rc.add_argument("--region", choices=["uk", "us"], default="uk")
    rc.set_defaults(func=cmd_rules_check)
    rr = rsub.add_parser("replay", help="run rules over recorded readings; print what fires when")
    rr.add_argument("file")
    rr.add_argument("--data", required=True, help="CSV with columns ts, device, point, value")
    rr.add_argument("--region", choices=["uk", "us"], default="uk")
    rr.add_argument("--tz", default="UTC", help="venue time zone (schedules, naive times)")
    rr.set_defaults(func=cmd_rules_replay)

    hc = subparsers.add_parser("haccp", help="HACCP records: verify the chain, export reports")
    hsub = hc.add_subparsers(dest="action", required=True, metavar="ACTION")
    hv = hsub.add_parser("verify", help="prove the record chain intact or name the first break")
    config_opt(hv)
    hv.set_defaults(func=cmd_haccp_verify)
    hr = hsub.add_parser("report", help="per unit: daily log, excursions, gaps, checks")
    config_opt(hr)
    hr.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    hr.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD")
    hr.add_argument("--format", choices=["csv", "pdf"], default="csv")
    hr.add_argument("--lang", choices=["en", "it"], default="en", help="report language")
    hr.add_argument("--output", "-o", help="file to write (default: stdout)")
    hr.set_defaults(func=cmd_haccp_report)

    nt = subparsers.add_parser("notify", help="off-box alarm notifications")
    nsub = nt.add_subparsers(dest="action", required=True, metavar="ACTION")
    ntt = nsub.add_parser("test", help="send a test message to every configured recipient")
    config_opt(ntt)
    ntt.set_defaults(func=cmd_notify_test)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for these commands (the agent's CLI adds them to its own parser)."""
    p = argparse.ArgumentParser(prog="beerflow-edge")
    add_commands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    try:
        return int(args.func(args))
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
