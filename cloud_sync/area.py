"""The sync area: the whole sync stack on a provisioned box, a one-line status otherwise."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from cloud_sync.paths import identity_path
from edge_agent.area import Area, AreaContext

log = logging.getLogger(__name__)


def _not_provisioned(app: web.Application) -> None:
    async def status(_: web.Request) -> web.Response:
        return web.json_response({"enabled": False, "enrolled": False, "online": None})

    app.router.add_get("/sync", status)


def build(ctx: AreaContext) -> Area:
    if os.path.exists(identity_path(ctx.config.storage.path)):
        # Imported only for a provisioned box: the crypto and HTTP-client stack is
        # megabytes an offline-only box never needs.
        from cloud_sync import service

        return service.build(ctx)
    log.info("sync: not provisioned (run `beerflow-edge provision` to enable it)")
    return Area("sync", routes=[_not_provisioned])
