"""The shared polling loop's contract, driven through a scripted device.

The device here is a script of outcomes rather than a protocol peer: what is under test is the
loop's arithmetic (tick alignment, backoff, when an outage starts and ends), which every
transport's coordinator inherits and whose real-peer behaviour the Modbus and scale tests cover.
"""

from __future__ import annotations

import asyncio
import logging
import random

from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DeviceIOError, DeviceRejected
from drivers.polling import CAP_INTERVALS, PollingCoordinator, next_tick
from edge_agent.clock import ManualClock
from edge_agent.health import DeviceHealth
from tests.helpers import until


class Scripted(PollingCoordinator):
    def __init__(self, outcomes: list[bool], clock: ManualClock, **kw: object) -> None:
        super().__init__("dev", 5.0, clock, DeviceHealth("dev", "test"), **kw)  # type: ignore[arg-type]
        self.outcomes = outcomes
        self.polled_at: list[float] = []
        self.dropped = 0

    async def connect(self) -> None:
        pass

    async def poll(self) -> None:
        self.polled_at.append(self.clock.time())
        ok = self.outcomes.pop(0) if self.outcomes else True
        if not ok:
            raise DeviceIOError("CRC mismatch")

    def after_failure(self, exc: DeviceIOError | DeviceRejected) -> None:
        self.dropped += 1


async def _drive(coord: Scripted, clock: ManualClock, polls: int) -> None:
    task = asyncio.create_task(coord.run())
    try:
        for _ in range(100 * polls):
            if len(coord.polled_at) >= polls:
                break
            await until(lambda: clock.sleepers > 0, what="the loop to sleep")
            await clock.advance(1.0)
        assert len(coord.polled_at) >= polls
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_single_failures_are_counted_not_outages(caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    clock = ManualClock(start=1000.0)
    # ok, then a bad frame every other poll: never two in a row
    coord = Scripted([True, False, True, False, True, False, True], clock)
    await _drive(coord, clock, 7)
    h = coord.health
    assert h.connected and h.transient == 3 and h.errors == 3 and h.outage_since is None
    assert coord.dropped == 3
    assert not [r for r in caplog.records if "offline" in r.getMessage()]


async def test_a_run_of_failures_is_one_outage_and_one_recovery(caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    clock = ManualClock(start=1000.0)
    coord = Scripted([True] + [False] * 8 + [True, True], clock, rng=random.Random(1))
    await _drive(coord, clock, 11)
    h = coord.health
    assert h.connected and h.errors == 8 and h.transient == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("offline" in m for m in messages) == 1
    assert sum("back online" in m for m in messages) == 1


async def test_a_device_never_seen_is_offline_at_its_first_failure():
    clock = ManualClock(start=1000.0)
    coord = Scripted([False] * 5, clock)
    await _drive(coord, clock, 1)
    assert coord.health.outage_since == 1000.0 and coord.health.transient == 0


async def test_successful_polls_land_on_multiples_of_the_interval():
    clock = ManualClock(start=1001.3)
    coord = Scripted([], clock)
    await _drive(coord, clock, 4)
    assert coord.polled_at[0] == 1001.3
    assert all(t % 5.0 == 0 for t in coord.polled_at[1:])


async def test_backoff_is_capped_at_twelve_intervals():
    clock = ManualClock(start=0.0)
    coord = Scripted([False] * 40, clock, rng=random.Random(3))
    waits = [coord.note_failure(DeviceIOError("x")) for _ in range(40)]
    assert max(waits) <= CAP_INTERVALS * 5.0
    assert waits[-1] > 5.0  # it did back off, not retry every tick


@given(st.floats(0, 1e10), st.floats(0.01, 3600))
def test_next_tick_is_the_next_multiple(now, interval):
    t = next_tick(now, interval)
    assert t > now or abs(t - now) < 1e-6 * max(1.0, now)
    assert t - now <= interval * (1 + 1e-9) + 1e-6 * max(1.0, now)
