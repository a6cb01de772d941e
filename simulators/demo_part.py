"""How a transport's simulators join the demo venue (`make demo`).

Each transport offers `async def demo_part(workdir: str, clock: Clock) -> DemoPart` in its
simulator module: it starts its simulated devices on loopback and returns the venue-config
blocks (`[[devices]]`, and `[[brokers]]` etc. where needed) that point the agent at them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class DemoPart:
    config_toml: str
    stop: Callable[[], Awaitable[None]]
    description: str = ""
