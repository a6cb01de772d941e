"""A real agent process on scaled equipment time, for the rules kill -9 test.

    python -m tests.rules_child CONFIG EPOCH SPEED

Imports everything, prints `READY`, then waits for a line on stdin before it builds the agent
from CONFIG (and the rules.toml next to it) and runs it. The wait lets the parent start the
replacement process while the first still runs, so the restart after a kill costs a store open,
not a Python start-up (seconds of wall time are many minutes of equipment time).

Equipment time is `EPOCH + (wall - EPOCH) * SPEED` in every process that shares EPOCH, so it
carries on across the kill instead of starting again with the new process.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from beerflow_edge.agent import Agent
from edge_agent.config.loader import load_config
from firmware_profiles.loader import load_library


class EpochClock:
    """Wall time scaled by `speed` around a shared epoch (a clock for several processes)."""

    def __init__(self, epoch: float, speed: float) -> None:
        self.epoch = epoch
        self.speed = speed
        self._m0 = time.monotonic()

    def time(self) -> float:
        return self.epoch + (time.time() - self.epoch) * self.speed

    def monotonic(self) -> float:
        return self._m0 + (time.monotonic() - self._m0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.speed)


async def main(config: str, clock: EpochClock) -> int:
    agent = Agent(load_config(config), load_library(), clock=clock)
    return await agent.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    path, epoch, speed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    print("READY", flush=True)
    sys.stdin.readline()
    sys.exit(asyncio.run(main(path, EpochClock(epoch, speed))))
