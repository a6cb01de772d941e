"""The command router when a driver misbehaves. A driver that raises is a bug no real peer
can be asked to produce, so the handler here is a stand-in that raises or blocks on demand;
everything else (bus, events, task group) is the real thing."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from drivers.base import CommandResult, DriverContext
from drivers.command_router import DEVICE_QUEUE, CommandRouter
from edge_agent.bus import Bus, Overflow
from edge_agent.clock import ManualClock
from edge_agent.health import HealthRegistry
from edge_agent.messages import Command, Event
from tests.helpers import until


class Handler:
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = 0

    async def execute(self, command: Command) -> CommandResult:
        self.entered += 1
        await self.gate.wait()
        if command.name == "explode":
            raise RuntimeError("register map out of range")
        self.ran.append(command.command_id)
        return CommandResult(True, value=1)


def cmd(i: int, name: str, clock: ManualClock, device: str = "plug") -> Command:
    return Command(f"c{i}", device, name, {}, "test", clock.time(), clock.time() + 60)


async def start(clock: ManualClock) -> tuple[Bus, CommandRouter, Handler, list[Event], Any]:
    bus = Bus()
    handler = Handler()
    ctx = DriverContext(cast(Any, None), bus, clock, HealthRegistry(), {"plug": handler})
    router = CommandRouter(ctx, bus, clock)
    sub = bus.subscribe("t", (Event,), 10_000, Overflow.BLOCK)
    events: list[Event] = []

    async def collect() -> None:
        while True:
            events.extend(await sub.channel.get_batch(1000))

    tasks = [asyncio.create_task(router.run()), asyncio.create_task(collect())]
    return bus, router, handler, events, tasks


async def test_a_driver_that_raises_fails_that_command_and_the_next_ones_run(
    clock: ManualClock,
) -> None:
    bus, _router, handler, events, tasks = await start(clock)
    try:
        await bus.publish(cmd(1, "switch_on", clock))
        await bus.publish(cmd(2, "explode", clock))
        await bus.publish(cmd(3, "switch_off", clock))
        await until(lambda: len(events) == 3, what="three results")
        results = {e.data["command_id"]: e.data for e in events}
        assert results["c1"]["ok"] and results["c3"]["ok"]
        assert not results["c2"]["ok"] and "RuntimeError" in results["c2"]["error"]
        assert handler.ran == ["c1", "c3"]
        assert not tasks[0].done()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_device_that_stops_answering_has_a_bounded_queue_and_refusals_on_record(
    clock: ManualClock,
) -> None:
    bus, router, handler, events, tasks = await start(clock)
    handler.gate.clear()  # the device hangs on the first command
    try:
        total = DEVICE_QUEUE + 30
        await bus.publish(cmd(0, "switch_on", clock))
        await until(lambda: handler.entered == 1, what="the device busy")
        for i in range(1, total):
            await bus.publish(cmd(i, "switch_on", clock))
        # One in the driver, DEVICE_QUEUE waiting, the rest refused at once, each on record.
        await until(lambda: len(events) == total - DEVICE_QUEUE - 1, what="refusals")
        assert router.refused == total - DEVICE_QUEUE - 1
        assert all(not e.data["ok"] and "refused" in e.data["error"] for e in events)
        handler.gate.set()
        await until(lambda: len(events) == total, what="every command accounted for")
        assert len(handler.ran) == DEVICE_QUEUE + 1
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
