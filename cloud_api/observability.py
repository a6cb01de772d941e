"""Probes and metrics routes: ``/healthz`` (alive), ``/readyz`` (can serve: the database
answers), ``/metrics`` (Prometheus text; behind the admin token on the public listener, open on
the separate metrics listener that only the cluster reaches)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud_api.metrics import CloudMetrics
from edge_agent import __version__

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READY_TIMEOUT_S = 2.0


def metrics_handler(metrics: CloudMetrics) -> Handler:
    async def serve(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve


def add_routes(
    app: web.Application,
    metrics: CloudMetrics,
    ping: Callable[[], Awaitable[None]],
    admin: Callable[[Handler], Handler],
) -> None:
    async def healthz(_: web.Request) -> web.Response:
        # Liveness: the event loop answers. It deliberately does not touch the database, so
        # a database outage makes pods unready (no traffic) without restarting them all.
        return web.json_response({"status": "ok", "version": __version__})

    async def readyz(_: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(ping(), READY_TIMEOUT_S)
        except Exception as exc:  # any failure to reach the database means "not ready"
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return web.json_response({"status": "unready", "database": reason}, status=503)
        return web.json_response({"status": "ready", "database": "ok"})

    app.middlewares.append(metrics.middleware())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", admin(metrics_handler(metrics)))


def metrics_app(metrics: CloudMetrics) -> web.Application:
    """The metrics listener: only ``/metrics``, no token (scraped inside the cluster)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(metrics))
    return app
