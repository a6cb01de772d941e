"""The bus: bounded per subscriber, overflow by policy, every drop and stall counted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edge_agent.bus import Bus, Overflow
from edge_agent.errors import BusClosed
from edge_agent.messages import Event, Reading


def r(i: int) -> Reading:
    return Reading("d", "p", float(i), float(i))


async def test_fan_out_by_kind():
    bus = Bus()
    readings = bus.subscribe("readings", [Reading], 10, Overflow.BLOCK)
    events = bus.subscribe("events", [Event], 10, Overflow.BLOCK)
    await bus.publish(r(1))
    await bus.publish(Event("x", 0.0, "t"))
    assert len(readings.channel) == 1 and len(events.channel) == 1


async def test_drop_oldest_keeps_the_freshest_and_counts(caplog):
    bus = Bus()
    view = bus.subscribe("view", [Reading], 3, Overflow.DROP_OLDEST)
    with caplog.at_level(logging.WARNING):
        await bus.publish_many([r(i) for i in range(10)])
    assert [m.value for m in await view.channel.get_batch(10)] == [7.0, 8.0, 9.0]
    assert view.dropped == 7
    # one log line for the episode, not one per dropped message
    assert sum("view is full" in rec.message for rec in caplog.records) == 1


async def test_drop_newest_counts():
    bus = Bus()
    sub = bus.subscribe("s", [Reading], 2, Overflow.DROP_NEWEST)
    await bus.publish_many([r(i) for i in range(5)])
    assert [m.value for m in await sub.channel.get_batch(10)] == [0.0, 1.0]
    assert sub.dropped == 3


async def test_block_applies_back_pressure_and_loses_nothing():
    bus = Bus()
    sub = bus.subscribe("store", [Reading], 4, Overflow.BLOCK)
    producer = asyncio.create_task(bus.publish_many([r(i) for i in range(20)]))
    got: list[float] = []
    while len(got) < 20:
        got += [m.value for m in await sub.channel.get_batch(3)]
    await producer
    assert got == [float(i) for i in range(20)]
    assert sub.stalls >= 1 and sub.dropped == 0


async def test_publish_after_close_is_an_error():
    bus = Bus()
    bus.close()
    with pytest.raises(BusClosed):
        await bus.publish(r(1))
