"""Child process for bench/haccp.py: the box's durable notification path under kill -9.

Enqueues one step-1 notification per alarm id (idempotent: a restarted child adds nothing),
then runs the real Notifier (Apprise to the parent's SMTP server) until killed."""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edge_agent.clock import SystemClock
from edge_agent.store.writer import StoreWriter
from rules.notify import records
from rules.notify.model import Notify, Recipient
from rules.notify.service import Notifier


async def main(store: str, url: str, alarms: int) -> None:
    clock = SystemClock()
    writer = StoreWriter(store, clock=clock)
    await writer.open()
    task = asyncio.create_task(writer.run())
    now = clock.time()

    def enqueue(conn: object) -> int:
        n = 0
        for aid in range(1, alarms + 1):
            n += records.enqueue(
                conn,  # type: ignore[arg-type]
                aid,
                "step1",
                ("manager",),
                "alarm",
                "high",
                f"ALARM {aid}",
                f"alarm {aid}",
                now,
            )
        return n

    await writer.transact(enqueue)
    print("ready", flush=True)
    cfg = Notify((Recipient("manager", (url,)),), max_per_hour=3600, retry_base_s=1)
    await Notifier(writer, clock, cfg, "UTC").run()
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
