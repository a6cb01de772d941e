"""`beerflow-edge provision` and `beerflow-edge sync status`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def _config(path: str) -> Any:
    from edge_agent.config.loader import load_config

    return load_config(path)


def cmd_provision(args: argparse.Namespace) -> int:
    import aiohttp

    from cloud_sync.enrol import enrol
    from cloud_sync.errors import EnrolmentError
    from cloud_sync.identity import load, new_identity, save
    from cloud_sync.paths import identity_path
    from edge_agent import __version__
    from edge_agent.errors import ValidationError

    try:
        cfg = _config(args.config)
    except ValidationError as exc:
        print(f"{args.config}: invalid config: {exc}", file=sys.stderr)
        return EXIT_INVALID
    cloud = args.cloud or (cfg.cloud.url if cfg.cloud else None)
    if not cloud:
        print("provision: no cloud URL (use --cloud or [cloud] url in the config)", file=sys.stderr)
        return EXIT_INVALID
    path = identity_path(cfg.storage.path)
    ident = load(path)
    if ident is not None and ident.enrolled:
        print(
            f"box {ident.box_id} is already enrolled for venue {ident.venue}; "
            f"delete {path} to re-provision",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if ident is None or ident.venue != cfg.venue.id:
        ident = new_identity(cfg.venue.id, cloud, args.claim)
    else:
        from dataclasses import replace

        ident = replace(ident, cloud_url=cloud.rstrip("/"), pending_claim=args.claim)
    save(path, ident)
    if args.offline:
        print(
            f"box {ident.box_id}: identity created at {path} (mode 0600); it will enrol "
            f"with {cloud} when the cloud is reachable"
        )
        return EXIT_OK

    async def go() -> Any:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            return await enrol(s, ident, args.claim, __version__)

    try:
        enrolled = asyncio.run(go())
    except EnrolmentError as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    save(path, enrolled)
    print(
        f"box {enrolled.box_id} enrolled for venue {enrolled.venue} "
        f"(tenant {enrolled.tenant}); cloud keys pinned in {path}"
    )
    return EXIT_OK


def cmd_sync_status(args: argparse.Namespace) -> int:
    from cloud_sync.identity import load
    from cloud_sync.paths import identity_path
    from cloud_sync.service import sync_status
    from edge_agent.store.writer import ensure_store

    cfg = _config(args.config)
    ensure_store(cfg.storage.path)
    ident = load(identity_path(cfg.storage.path))
    st = sync_status(cfg.storage.path, None, time.time())
    st["box"] = ident.box_id if ident else None
    st["enrolled"] = ident.enrolled if ident else False
    if args.json:
        print(json.dumps(st, indent=2))
        return EXIT_OK
    print(f"box: {st['box'] or 'not provisioned'}; enrolled: {st['enrolled']}")
    print(f"oldest unsent: {st['oldest_unsent_age_s']} s")
    for name, b in st["backlog"].items():
        print(
            f"  {name:<10} {b['records']:>8} records  {b['bytes']:>10} bytes  "
            f"acked to {b['acked_seq']}  evicted {b['evicted']}"
        )
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    default_config = os.environ.get("BEERFLOW_CONFIG", "/etc/beerflow/venue.toml")
    p = subparsers.add_parser("provision", help="create this box's keys and enrol it")
    p.add_argument("--cloud", default=None, help="cloud URL (default: [cloud] url)")
    p.add_argument("--claim", required=True, help="claim code from `beerflow-cloud claim create`")
    p.add_argument("--offline", action="store_true", help="create the identity now, enrol later")
    p.add_argument("--config", default=default_config)
    p.set_defaults(func=cmd_provision)
    s = subparsers.add_parser("sync", help="cloud sync")
    ssub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    st = ssub.add_parser("status", help="backlog per stream, oldest unsent record")
    st.add_argument("--config", default=default_config)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_sync_status)
