"""The cloud peer for sync tests: a real cloud_api over loopback (SQLite or a throwaway
PostgreSQL cluster), provisioned boxes with real keys, a fault-injecting TCP proxy, and a
child-process box (StoreWriter + outbox + sync client) for the kill -9 tests.

The kill -9 child box lives in ``tests/peers/cloud_child.py`` (light imports, fast restarts).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from cloud_api import db
from cloud_api.app import build_app
from cloud_api.db import make_engine
from cloud_api.keys import load_or_create
from cloud_api.store import CloudStore
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.enrol import enrol
from cloud_sync.identity import BoxIdentity, new_identity, save
from cloud_sync.outbox import Outbox
from edge_agent.clock import ManualClock
from edge_agent.store.writer import StoreWriter

ADMIN = "test-admin-token"
TENANT, VENUE = "brewco", "the-crown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CloudServer:
    data: str
    db_url: str
    port: int = field(default_factory=free_port)
    store: CloudStore | None = None
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.store = CloudStore(make_engine(self.db_url), load_or_create(f"{self.data}/keys.json"))
        self.runner = web.AppRunner(build_app(self.store, ADMIN), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.store is not None:
            self.store.engine.dispose()

    async def get(self, path: str) -> object:
        async with (
            aiohttp.ClientSession() as s,
            s.get(self.url + path, headers={"Authorization": f"Bearer {ADMIN}"}) as r,
        ):
            assert r.status == 200, await r.text()
            return await r.json()


async def start_cloud(tmp: Path, db_url: str | None = None) -> CloudServer:
    tmp.mkdir(parents=True, exist_ok=True)
    cloud = CloudServer(str(tmp), db_url or f"sqlite:///{tmp}/cloud.db")
    await cloud.start()
    return cloud


async def enrolled_box(
    cloud: CloudServer, tmp: Path, venue: str = VENUE
) -> tuple[BoxIdentity, str]:
    assert cloud.store is not None
    code = cloud.store.create_claim(TENANT, venue)
    ident = new_identity(venue, cloud.url)
    async with aiohttp.ClientSession() as s:
        ident = await enrol(s, ident, code)
    path = str(tmp / "sync" / "identity.json")
    save(path, ident)
    return ident, path


def cloud_seqs(cloud: CloudServer, box: str, stream: str) -> list[int]:
    assert cloud.store is not None
    import sqlalchemy as sa

    from cloud_api import db

    with cloud.store.engine.connect() as c:
        return [
            int(s)
            for (s,) in c.execute(
                sa.select(db.records.c.seq)
                .where(db.records.c.box_id == box, db.records.c.stream == stream)
                .order_by(db.records.c.seq)
            )
        ]


# ---- PostgreSQL ------------------------------------------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster under a temp dir, run as the postgres user."""
    if not os.path.exists(f"{PG_BIN}/initdb") or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL 15 binaries not installed (apt-get install postgresql)")
    tmp = tempfile.mkdtemp(prefix="bf-pg-")
    os.chmod(tmp, 0o755)
    pgdata = os.path.join(tmp, "data")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(tmp, "postgres", "postgres")
    try:
        subprocess.run(
            [
                *as_pg,
                f"{PG_BIN}/initdb",
                "-D",
                pgdata,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [
                *as_pg,
                f"{PG_BIN}/pg_ctl",
                "-D",
                pgdata,
                "-w",
                "-l",
                os.path.join(tmp, "log"),
                "-o",
                f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"cannot start a throwaway PostgreSQL cluster: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_pg, f"{PG_BIN}/pg_ctl", "-D", pgdata, "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def reset_postgres(url: str) -> None:
    from cloud_api.db import metadata

    eng = make_engine(url)
    metadata.drop_all(eng)
    eng.dispose()


# ---- fault-injecting proxy -------------------------------------------------------------------


class FaultProxy:
    """TCP proxy that, per connection, passes, drops, resets, delays or truncates."""

    def __init__(self, target_port: int, seed: int = 7, fault_rate: float = 0.4) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.faults: dict[str, int] = {}
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        fault = "pass"
        if self.rng.random() < self.fault_rate:
            fault = self.rng.choice(
                ["drop", "reset", "delay", "truncate_req", "truncate_resp", "http_503"]
            )
        self.faults[fault] = self.faults.get(fault, 0) + 1
        try:
            if fault == "drop":
                cw.close()
                return
            if fault == "reset":
                await cr.read(100)
                cw.transport.abort()
                return
            if fault == "http_503":
                await cr.read(65536)
                cw.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
                await cw.drain()
                cw.close()
                return
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
            if fault == "delay":
                await asyncio.sleep(self.rng.uniform(0.01, 0.1))
            cut = self.rng.randint(10, 2000)

            async def pipe(
                r: asyncio.StreamReader, w: asyncio.StreamWriter, limit: int | None
            ) -> None:
                sent = 0
                try:
                    while data := await r.read(65536):
                        if limit is not None and sent + len(data) > limit:
                            w.write(data[: limit - sent])
                            await w.drain()
                            w.transport.abort()
                            return
                        w.write(data)
                        sent += len(data)
                        await w.drain()
                except (ConnectionError, OSError):
                    pass
                finally:
                    w.close()

            await asyncio.gather(
                pipe(cr, sw, cut if fault == "truncate_req" else None),
                pipe(sr, cw, cut if fault == "truncate_resp" else None),
            )
        except (ConnectionError, OSError):
            cw.transport.abort()


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[CloudServer]:
    c = await start_cloud(tmp_path / "cloud")
    try:
        yield c
    finally:
        await c.stop()


async def drain(client: SyncClient, store: str, limit: int = 500) -> None:
    # A connection per request, so a fault-injecting proxy sees every one.
    conn = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=2)) as s:
        for _ in range(limit):
            db = sqlite3.connect(store)
            (n,) = db.execute("SELECT count(*) FROM outbox").fetchone()
            db.close()
            if n == 0:
                return
            await client.step(s)
    raise AssertionError("outbox did not drain")


async def make_box(
    tmp_path: Path,
    cloud: CloudServer,
    clock: ManualClock,
    quota: int = 10**9,
    settings: SyncSettings | None = None,
) -> tuple[StoreWriter, Outbox, SyncClient, str]:
    (tmp_path / "box").mkdir(exist_ok=True)
    ident, path = await enrolled_box(cloud, tmp_path / "box")
    outbox = Outbox(ident, quota_bytes=quota, clock=clock.time)
    store = str(tmp_path / "box" / "store.db")
    writer = StoreWriter(
        store,
        clock=clock,
    )
    outbox.attach(writer)
    await writer.open()
    client = SyncClient(
        ident,
        outbox,
        writer,
        identity_file=path,
        clock=clock,
        settings=settings or SyncSettings(max_envelope_bytes=8192),
    )
    return writer, outbox, client, store


def losses(cloud: CloudServer, box: str, stream: str) -> list[tuple[int, int, int]]:
    assert cloud.store is not None
    with cloud.store.engine.connect() as c:
        return [
            (int(a), int(b), int(n))
            for a, b, n in c.execute(
                sa.select(db.losses.c.first, db.losses.c.last, db.losses.c.count)
                .where(db.losses.c.box_id == box, db.losses.c.stream == stream)
                .order_by(db.losses.c.first)
            )
        ]
