"""OPC-UA peers: the combi steamer simulator on a real asyncua server over loopback.

`Server.init()` costs about a second, so one server per test module (module-scoped event loop);
each test gets fresh oven models and a fresh ManualClock through `combi`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from edge_agent.bus import Bus, Overflow, Subscription
from edge_agent.clock import ManualClock
from edge_agent.messages import Reading
from simulators.opcua.combi_model import CombiModel
from simulators.opcua.combi_server import CombiServer

START = 1_750_000_000.0
OVENS = ("Combi_1", "Combi_2")


def models(clock: ManualClock) -> dict[str, CombiModel]:
    out = {name: CombiModel(clock.time(), seed=i) for i, name in enumerate(OVENS)}
    for m in out.values():
        m.random_doors = False  # tests open doors themselves
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def combi_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CombiServer]:
    clock = ManualClock(START)
    server = CombiServer(models(clock), clock, pki_dir=str(tmp_path_factory.mktemp("sim-pki")))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def combi(combi_server: CombiServer) -> CombiServer:
    """The shared server with new ovens and a new clock for this test."""
    clock = ManualClock(START)
    if not combi_server.started:  # a test that stopped it must not break the next one
        await combi_server.start()
    await combi_server.reset(clock, models(clock))
    return combi_server


def reading_tap(bus: Bus) -> Subscription:
    return bus.subscribe("test-tap", (Reading,), 100_000, Overflow.DROP_OLDEST)


def drain(sub: Subscription) -> list[Reading]:
    out = []
    while len(sub.channel):
        item = sub.channel.drop_oldest()
        if item is not None:
            out.append(item)
    return out
