"""`GET /readings/history` for the terminal's sparklines, read-only on the store, and
`GET /staff` (IDs and names, never the PIN hashes) so staff pick their name at the terminal.

Part of the agent's own area (see `area`). It opens its own WAL reader so it never blocks the
writer."""

from __future__ import annotations

import functools
import math

from aiohttp import web

from edge_agent.area import Area, AreaContext
from edge_agent.errors import StoreError
from edge_agent.store.reader import StoreReader

MAX_LIMIT = 5000


def area(ctx: AreaContext) -> Area:
    return Area("history", routes=[functools.partial(add_routes, ctx=ctx)])


def add_routes(app: web.Application, ctx: AreaContext) -> None:
    readers: dict[str, StoreReader] = {}

    def store() -> StoreReader:
        if "r" not in readers:
            readers["r"] = ctx.reader()
        return readers["r"]

    def number(request: web.Request, name: str, default: float | None) -> float | None:
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise web.HTTPBadRequest(text=f"{name} must be a number\n") from None
        if not math.isfinite(value):
            raise web.HTTPBadRequest(text=f"{name} must be finite\n")
        return value

    async def history(request: web.Request) -> web.Response:
        device = request.query.get("device")
        point = request.query.get("point")
        if not device or not point:
            raise web.HTTPBadRequest(text="device and point are required\n")
        if ctx.config.device(device) is None:
            raise web.HTTPNotFound(text=f"unknown device {device!r}\n")
        since = number(request, "since", None)
        limit = int(min(MAX_LIMIT, max(1, number(request, "limit", 1000) or 1)))
        try:
            rows = store().readings(device, point=point, since=since, limit=limit)
        except StoreError as exc:
            raise web.HTTPServiceUnavailable(text=f"{exc}\n") from exc
        return web.json_response(
            {
                "device": device,
                "point": point,
                "readings": [
                    {"ts": r.ts, "value": r.value, "unit": r.unit} for r in reversed(rows)
                ],
            }
        )

    async def staff(_: web.Request) -> web.Response:
        return web.json_response(
            {"staff": [{"id": m.id, "name": m.name} for m in ctx.config.staff]}
        )

    async def close(_: web.Application) -> None:
        if "r" in readers:
            readers.pop("r").close()

    app.router.add_get("/readings/history", history)
    app.router.add_get("/staff", staff)
    app.on_cleanup.append(close)
