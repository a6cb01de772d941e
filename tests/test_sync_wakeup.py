"""Two sync-client behaviours around the cloud's answers: a record committed while the
client reports its status still wakes it (no lost wake-up, no idle period to wait out), and an
envelope the cloud already stored (409) is not taken for an unreachable cloud (no backoff).
The injected clock is never advanced: a wait on the idle timer or on backoff hangs the test."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from cloud_sync.client import SyncSettings
from edge_agent.clock import ManualClock
from edge_agent.messages import Reading
from tests.helpers import until
from tests.peers.cloud import CloudServer, cloud, cloud_seqs, make_box  # noqa: F401


async def test_a_record_committed_during_the_status_report_is_sent_at_once(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    writer, _outbox, client, _store = await make_box(
        tmp_path, cloud, clock, settings=SyncSettings(idle_s=3600)
    )
    assert cloud.store is not None
    cloud.store.now = clock.time  # signed status requests carry the box's (injected) time
    wtask = asyncio.create_task(writer.run())
    committed = False

    async def commit_one_while_reporting(_: aiohttp.ClientSession) -> None:
        # Runs after the client found the outbox empty and before it goes idle: the moment
        # a wake-up used to be lost.
        nonlocal committed
        if not committed:
            committed = True
            await writer.accept(Reading("fridge-1", "temp", 3.5, clock.time(), "°C"))

    client.after_sync = commit_one_while_reporting
    ctask = asyncio.create_task(client.run())
    try:
        box = client.identity.box_id
        await until(
            lambda: cloud_seqs(cloud, box, "telemetry") == [1], what="the record", limit_s=10
        )
    finally:
        ctask.cancel()
        await asyncio.gather(ctask, return_exceptions=True)
        await writer.stop()
        await wtask


async def test_an_envelope_the_cloud_already_stored_is_not_an_outage(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    writer, _outbox, client, store = await make_box(tmp_path, cloud, clock)
    wtask = asyncio.create_task(writer.run())
    try:
        for i in range(5):
            await writer.submit(Reading("fridge-1", "temp", 3.0 + i, clock.time() + i, "°C"))
        await writer.flush()
        async with aiohttp.ClientSession() as s:
            env = await asyncio.to_thread(client._prepare, None)
            assert env is not None
            await client._send(s, env)  # stored; its answer "lost" (nothing deleted)
            client.state.online = True
            # The same bytes arrive again (a duplicated request): the cloud answers 409.
            dup: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            dup.set_result(env)
            client._prefetch = dup  # type: ignore[assignment]
            await asyncio.wait_for(client.step(s), 10)
            assert client.state.online is True
            assert client.backoff.attempt == 0
            # The next round sends the records in a new envelope and they are acknowledged.
            await asyncio.wait_for(client.step(s), 10)
        box = client.identity.box_id
        assert cloud_seqs(cloud, box, "telemetry") == [1, 2, 3, 4, 5]

        c = sqlite3.connect(store)
        assert c.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        c.close()
    finally:
        await writer.stop()
        await wtask


async def test_the_venue_config_cloud_url_wins_over_the_enrolled_one_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from beerflow_edge.agent import Agent
    from cloud_sync.identity import new_identity, save
    from cloud_sync.paths import identity_path
    from cloud_sync.service import SYNC_CLIENT, build
    from edge_agent.config.loader import load_config_text
    from firmware_profiles.loader import ProfileLibrary

    store = str(tmp_path / "data" / "store.db")
    text = (
        '[venue]\nid = "the-crown"\nname = "The Crown"\ntimezone = "Europe/London"\n'
        f'[storage]\npath = "{store}"\n[cloud]\nurl = "https://cloud.example.net"\n'
    )
    cfg = load_config_text(text, str(tmp_path / "venue.toml"))
    save(identity_path(store), new_identity("the-crown", "https://old.example.net/", "CLAIM"))
    agent = Agent(cfg, ProfileLibrary({}, {}))
    with caplog.at_level("WARNING"):
        area = build(agent.context)
    assert [s.name for s in area.services] == ["cloud-sync"]
    client = area.shared[SYNC_CLIENT]
    assert client.identity.cloud_url == "https://cloud.example.net"
    assert "differs from the enrolled https://old.example.net" in caplog.text
