"""The real agent for the watchdog test, plus one test-only hook: SIGUSR1 wedges its event loop
(a blocking call on the loop, the fault the watchdog exists for)."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading

from beerflow_edge.agent import Agent
from edge_agent.config.loader import load_config
from firmware_profiles.loader import load_library


async def main(path: str) -> int:
    cfg = load_config(path)
    agent = Agent(cfg, load_library(cfg.profiles.dirs))
    never = threading.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, never.wait)
    return await agent.run()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
