"""The sync area on a provisioned box: the sync client task, the writer hook, local API routes."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import replace
from typing import Any

from aiohttp import web

from cloud_sync import backfill
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.downlink import Downlink, DownlinkTargets
from cloud_sync.haccp_stream import ChainAnchoring, with_pump
from cloud_sync.identity import load
from cloud_sync.outbox import Outbox
from cloud_sync.paths import identity_path
from edge_agent.area import Area, AreaContext
from edge_agent.store.schema import connect
from edge_agent.supervisor import Service

log = logging.getLogger(__name__)

# The running sync client, shared with the /sync route through the local API's application.
SYNC_CLIENT = web.AppKey("sync_client", SyncClient)


def build(ctx: AreaContext) -> Area:
    """The sync client, when this box has an identity; sets the writer's outbox hook."""
    routes = [functools.partial(add_routes, ctx=ctx)]
    path = identity_path(ctx.config.storage.path)
    ident = load(path)
    if ident is None:
        log.info("sync: no box identity at %s; run `beerflow-edge provision` to enable sync", path)
        return Area("sync", routes=routes)
    cloud = ctx.config.cloud
    if cloud is not None and cloud.url.rstrip("/") != ident.cloud_url:
        # venue.toml is the one place an installer changes; the identity keeps the URL it
        # enrolled with only as a default. The cloud keys pinned at enrolment still apply,
        # so a URL of another cloud fails loudly at the first signed answer.
        log.warning(
            "sync: venue config [cloud] url %s differs from the enrolled %s; using %s",
            cloud.url,
            ident.cloud_url,
            cloud.url,
        )
        ident = replace(ident, cloud_url=cloud.url.rstrip("/"))
    settings = SyncSettings()
    quota = ctx.config.outbox_quota_mb * 1024 * 1024
    if cloud is not None:
        settings = SyncSettings(
            max_envelope_bytes=cloud.max_envelope_kb * 1024,
            bandwidth_bps=None if cloud.bandwidth_kbps is None else cloud.bandwidth_kbps * 125,
        )
    outbox = Outbox(ident, clock=ctx.clock.time, quota_bytes=quota)
    outbox.attach(ctx.writer)
    ctx.writer.in_transaction = with_pump(outbox.in_transaction, outbox, ctx.clock.time)
    anchoring = ChainAnchoring(outbox, ctx.writer, ctx.clock, ctx.bus.publish)

    downlink = None
    if ctx.config.source:
        # Documents replace the files the agent loaded: the venue config, rules.toml beside
        # it, and the downlinked-profiles directory beside it.
        targets = DownlinkTargets.beside(ctx.config.source, ctx.config.venue.food_safety_region)
        downlink = Downlink(targets, ctx.writer, ctx.clock, ctx.bus.publish)

    client = SyncClient(
        ident,
        outbox,
        ctx.writer,
        identity_file=path,
        settings=settings,
        clock=ctx.clock,
        publish=ctx.bus.publish,
        agent_version=ctx.version,
        downlink=downlink,
        after_sync=anchoring.after_sync,
    )
    anchoring.request = client.signed_request
    anchoring.wake = client.wake
    # Bounds of what the store accepted before the outbox hook existed (an offline install
    # enrolled later): written down now, before the writer commits through the hook.
    pending = backfill.plan(ctx.config.storage.path)

    async def run_client() -> None:
        if pending is not None:
            await backfill.run(ctx.writer, outbox)
        await client.run()

    return Area(
        "sync",
        services=[Service("cloud-sync", run_client, restart=True)],
        routes=routes,
        shared={SYNC_CLIENT: client},
    )


def sync_status(store_path: str, client: SyncClient | None, now: float) -> dict[str, Any]:
    conn = connect(store_path, readonly=True)
    try:
        backlog = Outbox.backlog(conn)
        oldest = Outbox.oldest_unsent(conn)
    finally:
        conn.close()
    st = client.state if client is not None else None
    return {
        "enabled": client is not None,
        "box": client.identity.box_id if client else None,
        "enrolled": client.identity.enrolled if client else False,
        "online": st.online if st else None,
        "last_success": st.last_success if st else None,
        "last_error": st.last_error if st else "",
        "oldest_unsent_age_s": None if oldest is None else round(now - oldest, 1),
        "backlog": {
            b.stream: {
                "records": b.rows,
                "bytes": b.bytes,
                "priority": b.priority,
                "next_seq": b.next_seq,
                "acked_seq": b.acked_seq,
                "evicted": b.evicted,
            }
            for b in backlog
        },
    }


def add_routes(app: web.Application, ctx: AreaContext) -> None:
    async def status(_: web.Request) -> web.Response:
        client = app.get(SYNC_CLIENT)
        body = await asyncio.to_thread(
            sync_status, ctx.config.storage.path, client, ctx.clock.time()
        )
        return web.json_response(body)

    app.router.add_get("/sync", status)
