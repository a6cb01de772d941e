"""Small helpers shared by tests: waiting on a condition with a hard bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp


async def until(cond: Callable[[], bool], limit_s: float = 10.0, what: str = "condition") -> None:
    """Yield to the loop until cond() holds; fail (not hang) after `limit_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def api_get(socket_path: str, path: str) -> tuple[int, str]:
    conn = aiohttp.UnixConnector(path=socket_path)
    async with aiohttp.ClientSession(connector=conn) as s, s.get(f"http://agent{path}") as r:
        return r.status, await r.text()
