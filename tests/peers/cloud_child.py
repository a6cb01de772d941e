"""A box in a child process for the kill -9 tests: the real StoreWriter with the outbox hook
and the real sync client, producing numbered critical events and printing ``ACK n`` once
every event below n is committed (accepted).

``python -m tests.peers.cloud_child STORE IDENTITY`` (CHAOS_LIMIT caps the events made).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time

from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.identity import load
from cloud_sync.outbox import Outbox
from edge_agent.messages import Event
from edge_agent.store.writer import StoreWriter, ensure_store


async def main(store: str, identity_path: str) -> None:
    ident = load(identity_path)
    assert ident is not None
    ensure_store(store)
    outbox = Outbox(ident, clock=time.time)
    writer = StoreWriter(
        store,
        max_batch=50,
    )
    outbox.attach(writer)
    await writer.open()
    client = SyncClient(
        ident,
        outbox,
        writer,
        settings=SyncSettings(
            max_envelope_bytes=4096, idle_s=0.05, backoff_base_s=0.01, backoff_cap_s=0.05
        ),
    )
    # Resume the numbering after what the store already accepted: the store is the truth.
    c = sqlite3.connect(store)
    (done,) = c.execute("SELECT count(*) FROM events WHERE kind='chaos'").fetchone()
    c.close()
    limit = int(os.environ.get("CHAOS_LIMIT", "1000000"))

    async def produce() -> None:
        i = done
        while i < limit:
            for _ in range(20):
                await writer.submit(Event("chaos", time.time(), "child", data={"i": i}))
                i += 1
            await writer.flush()
            sys.stdout.write(f"ACK {i}\n")
            sys.stdout.flush()
            await asyncio.sleep(0.002)
        sys.stdout.write("DONE\n")
        sys.stdout.flush()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        tg.create_task(client.run())
        tg.create_task(produce())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
