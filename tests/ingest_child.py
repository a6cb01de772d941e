"""A real agent process ingesting as fast as it can, for the kill -9 tests.

It publishes readings numbered 0, 1, 2… for one device and, after each flush barrier returns,
prints `ACK n`: every reading up to n is committed. The parent kills it at a random instant
and checks that every acknowledged reading is in the store.
"""

from __future__ import annotations

import asyncio
import sys
import time

from beerflow_edge.agent import Agent
from edge_agent.config.loader import load_config
from edge_agent.messages import Reading
from edge_agent.supervisor import Service
from firmware_profiles.loader import load_library


async def main(config: str, device: str) -> None:
    cfg = load_config(config)
    state = {"next": 0}
    agent: Agent

    async def produce() -> None:
        while True:
            start = state["next"]
            now = time.time()
            batch = [Reading(device, "seq", i, now) for i in range(start, start + 500)]
            await agent.bus.publish_many(batch)
            state["next"] = start + 500

    async def acknowledge() -> None:
        while True:
            published = state["next"] - 1
            await agent.writer.flush()
            if published >= 0:
                sys.stdout.write(f"ACK {published}\n")
                sys.stdout.flush()

    agent = Agent(
        cfg,
        load_library(),
        extra_services=[Service("producer", produce), Service("acknowledger", acknowledge)],
    )
    await agent.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
