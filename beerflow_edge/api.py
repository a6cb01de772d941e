"""The local HTTP API for the terminal UI and tools: a Unix socket (and optionally loopback TCP).

Views of the running agent (health, devices, latest readings, Prometheus metrics) and the
PIN-protected route for commands from people (`command_api`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from beerflow_edge import command_api
from beerflow_edge.agent_view import AgentView
from edge_agent.store.reader import StoreReader

log = logging.getLogger(__name__)


Agent = AgentView


def build_app(agent: Agent) -> web.Application:
    app = web.Application()
    reader: dict[str, StoreReader] = {}

    def store() -> StoreReader:
        if "r" not in reader:
            reader["r"] = StoreReader(agent.config.storage.path)
        return reader["r"]

    async def health(_: web.Request) -> web.Response:
        return web.json_response(agent.health_report())

    async def devices(_: web.Request) -> web.Response:
        return web.json_response({"devices": agent.device_report()})

    async def latest(request: web.Request) -> web.Response:
        device = request.query.get("device")
        if device is not None and agent.device_config(device) is None:
            raise web.HTTPNotFound(text=f"unknown device {device!r}\n")
        rows = store().latest(device)
        return web.json_response(
            {
                "readings": [
                    {
                        "device": r.device_id,
                        "point": r.point,
                        "value": r.value,
                        "unit": r.unit,
                        "ts": r.ts,
                        "quality": r.quality.name.lower(),
                    }
                    for r in rows
                ]
            }
        )

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(agent.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def close_reader(_: web.Application) -> None:
        if "r" in reader:
            reader.pop("r").close()

    app.router.add_get("/health", health)
    app.router.add_get("/devices", devices)
    app.router.add_get("/readings/latest", latest)
    app.router.add_get("/metrics", metrics)
    command_api.add_routes(app, agent)
    app.on_cleanup.append(close_reader)
    agent.install_routes(app)
    return app


class LocalApi:
    def __init__(self, agent: Agent, on_ready: Callable[[], None] | None = None) -> None:
        self.agent = agent
        self._runner: web.AppRunner | None = None
        self._on_ready = on_ready
        self.tcp_port: int | None = None

    async def run(self) -> None:
        import asyncio

        cfg = self.agent.config.api
        runner = web.AppRunner(build_app(self.agent), access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cfg.socket)  # a stale socket from a killed agent
            os.makedirs(os.path.dirname(cfg.socket) or ".", exist_ok=True)
            site: Any = web.SockSite(runner, _private_unix_socket(cfg.socket))
            await site.start()
            if cfg.tcp_port is not None:
                tcp = web.TCPSite(runner, cfg.tcp_host, cfg.tcp_port)
                await tcp.start()
                self.tcp_port = cfg.tcp_port
            log.info("local API on %s", cfg.socket)
            if self._on_ready:
                self._on_ready()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cfg.socket)


def _private_unix_socket(path: str) -> socket.socket:
    """Bind the API socket where nobody else can reach it yet (a fresh 0700 directory beside
    it), make it 0660, then move it into place: it is never reachable with looser modes."""
    parent = os.path.dirname(path) or "."
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    private = tempfile.mkdtemp(prefix=".api-", dir=parent)
    try:
        staged = os.path.join(private, "s")
        if len(staged.encode()) >= 108:  # sun_path too short to stage it: bind in place
            staged = path
        sock.bind(staged)
        os.chmod(staged, 0o660)
        if staged != path:
            os.rename(staged, path)
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(private)
    return sock
