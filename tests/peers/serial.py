"""A fake MT-SICS scale on a real socat pty pair, and the serial driver started from a venue
config, with a bus subscription that records what the driver publishes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from drivers.base import DriverContext
from drivers.serial import factory
from edge_agent.bus import Bus, Overflow, Subscription
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.health import DeviceHealth, HealthRegistry
from edge_agent.messages import Event, Reading
from firmware_profiles.loader import load_library
from simulators.serial.mtsics_scale import FakeScale, PtyPair
from simulators.serial.scale_model import KegModel, ScaleModel
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until


@dataclass
class Rig:
    pair: PtyPair
    scale: FakeScale
    clock: ManualClock

    async def unplug(self) -> None:
        await self.scale.stop()
        await self.pair.stop()

    async def replug(self) -> None:
        await self.pair.start()
        await self.scale.start()


async def _rig(tmp_path, clock: ManualClock, model: ScaleModel, **kw) -> Rig:
    pair = PtyPair(str(tmp_path), "scale")
    await pair.start()
    scale = FakeScale(model, clock, pair.device_path, **kw)
    try:
        await scale.start()
    except BaseException:
        await pair.stop()
        raise
    return Rig(pair, scale, clock)


@pytest.fixture
async def bench(tmp_path, clock: ManualClock) -> AsyncIterator[Rig]:
    rig = await _rig(tmp_path, clock, ScaleModel(seed=1, start=clock.time()))
    try:
        yield rig
    finally:
        await rig.unplug()


@pytest.fixture
async def keg(tmp_path, clock: ManualClock) -> AsyncIterator[Rig]:
    model = KegModel(seed=2, start=clock.time(), litres=40.0, keg_tare_kg=13.0)
    rig = await _rig(tmp_path, clock, model, decimals=2)
    try:
        yield rig
    finally:
        await rig.unplug()


def scale_config(port: str, profile: str = "mettler-toledo-mtsics", poll: float = 1.0) -> str:
    return (
        MINIMAL_VENUE
        + f'\n[[buses]]\nid = "scale-line"\ntype = "rs232"\nport = "{port}"\n'
        + f'\n[[devices]]\nid = "scale"\nprofile = "{profile}"\nbus = "scale-line"\n'
        + f"poll_interval_s = {poll}\n"
    )


@dataclass
class Driver:
    ctx: DriverContext
    sub: Subscription
    clock: ManualClock
    tasks: list[asyncio.Future[None]]
    seen: list[Reading | Event] = field(default_factory=list)

    @property
    def health(self) -> DeviceHealth:
        h = self.ctx.health.get("scale")
        assert h is not None
        return h

    def drain(self) -> list[Reading | Event]:
        while (item := self.sub.channel.drop_oldest()) is not None:
            self.seen.append(item)
        return self.seen

    def readings(self, point: str) -> list[Reading]:
        self.drain()
        return [m for m in self.seen if isinstance(m, Reading) and m.point == point]

    def events(self) -> list[Event]:
        self.drain()
        return [m for m in self.seen if isinstance(m, Event)]

    async def step(self, seconds: int = 1) -> None:
        """Move time a second at a time, letting each request's real pty round trip finish
        before time moves again (a multi-second jump would fire a reply timeout that lies
        in it before the reply's bytes could arrive)."""
        link = self.ctx.shared["serial"]["scale-line"]
        for _ in range(seconds):
            await self.clock.advance(1.0)
            await asyncio.sleep(0.001)
            # a transaction still waiting on the fake's clock (T settling) stays locked: go on
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.lock.acquire(), 0.3)
                link.lock.release()

    async def poll(self) -> None:
        """Move time to the next poll and wait until it has been answered or failed."""
        h = self.health
        before = h.polls + h.errors + h.malformed
        await self.step(1)
        await until(lambda: h.polls + h.errors + h.malformed > before, what="a poll")

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for link in self.ctx.shared.get("serial", {}).values():
            link.reset()


async def start_driver(write_config, clock: ManualClock, text: str) -> Driver:
    cfg = load_config(write_config(text))
    lib = load_library()
    bus = Bus()
    sub = bus.subscribe("test", (Reading, Event), 100_000, Overflow.BLOCK)
    ctx = DriverContext(cfg, bus, clock, HealthRegistry())
    devices = [(d, lib.profiles[d.profile]) for d in cfg.devices]
    services = factory.build(ctx, devices)
    tasks: list[asyncio.Future[None]] = [asyncio.ensure_future(s.run()) for s in services]
    driver = Driver(ctx, sub, clock, tasks)
    await until(lambda: driver.health.polls + driver.health.errors >= 1, what="first poll")
    return driver
