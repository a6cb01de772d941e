"""The demo's local cloud: cloud_api on loopback with its own SQLite, and this box enrolled to
it with real keys, so `make demo` shows sync end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from cloud_api.app import build_app
from cloud_api.cli import admin_token, open_store
from cloud_sync.enrol import enrol
from cloud_sync.identity import load, new_identity, save
from cloud_sync.paths import identity_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoCloud:
    data: str
    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_cloud_and_enrol(
    workdir: str, store_path: str, tenant: str, venue: str
) -> DemoCloud:
    data = os.path.join(workdir, "cloud")
    fresh = not await asyncio.to_thread(os.path.exists, os.path.join(data, "cloud.db"))
    store = open_store(data, f"sqlite:///{os.path.join(data, 'cloud.db')}")
    runner = web.AppRunner(build_app(store, admin_token(data)), access_log=None)  # type: ignore[arg-type]
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    path = identity_path(store_path)
    ident = None if fresh else load(path)
    if ident is None or not ident.enrolled:
        code = store.create_claim(tenant, venue)  # type: ignore[attr-defined]
        async with aiohttp.ClientSession() as s:
            ident = await enrol(s, new_identity(venue, url, code), code)
    elif ident.cloud_url != url:
        # The demo cloud listens on a new port each run; its keys and database persist.
        ident = dataclasses.replace(ident, cloud_url=url)
    save(path, ident)
    return DemoCloud(data, url, runner)
