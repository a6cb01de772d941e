"""The same ingest path against PostgreSQL (a throwaway cluster; skipped with the reason when
PostgreSQL is not installed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading
from tests.peers.cloud import cloud_seqs, postgres_url, reset_postgres, start_cloud
from tests.test_sync_end_to_end import drain, make_box

__all__ = ["postgres_url"]


async def test_ingest_is_idempotent_on_postgres(
    tmp_path: Path, postgres_url: str, clock: ManualClock
) -> None:
    reset_postgres(postgres_url)
    cloud = await start_cloud(tmp_path / "cloud", postgres_url)
    try:
        writer, _outbox, client, store = await make_box(tmp_path, cloud, clock)
        task = asyncio.create_task(writer.run())
        for i in range(300):
            await writer.submit(Reading("fridge-1", "temp", float(i), clock.time() + i))
            if i % 50 == 0:
                await writer.submit(Event("alarm.raised", clock.time(), "rules", data={"i": i}))
        await writer.flush()
        await drain(client, store)
        box = client.identity.box_id
        assert cloud_seqs(cloud, box, "telemetry") == list(range(1, 301))
        assert cloud_seqs(cloud, box, "alarms") == list(range(1, 7))
        fleet = await cloud.get("/v1/fleet")
        assert isinstance(fleet, list) and fleet[0]["box"] == box
        await writer.stop()
        await task
    finally:
        await cloud.stop()
