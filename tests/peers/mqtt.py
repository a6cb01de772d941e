"""A private Mosquitto per test module, and a rig that runs the MQTT driver against it with a
collecting bus subscriber. Import the fixtures explicitly into a test module."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.base import DriverContext
from drivers.mqtt import factory
from drivers.mqtt.broker import Mosquitto
from drivers.mqtt.service import BrokerService
from edge_agent.bus import Bus, Overflow, Subscription
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.health import HealthRegistry
from edge_agent.messages import Command, Reading
from edge_agent.store.writer import StoreWriter
from firmware_profiles.loader import load_library
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until

_ids = itertools.count()


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Rig:
    ctx: DriverContext
    service: BrokerService
    sub: Subscription
    task: asyncio.Task[None]
    clock: ManualClock
    readings: list[Reading] = field(default_factory=list)
    writer: StoreWriter | None = None

    def collect(self) -> list[Reading]:
        while len(self.sub.channel):
            item = self.sub.channel.drop_oldest()
            if item is not None:
                self.readings.append(item)
        return self.readings

    def points(self, device: str) -> dict[str, Reading]:
        return {r.point: r for r in self.collect() if r.device_id == device}

    async def wait_point(self, device: str, point: str, cond=lambda r: True, limit_s: float = 10):  # type: ignore[no-untyped-def]
        await until(
            lambda: any(
                r.device_id == device and r.point == point and cond(r) for r in self.collect()
            ),
            limit_s,
            f"{device}.{point}",
        )

    async def command(self, device: str, name: str, **args):  # type: ignore[no-untyped-def]
        now = self.clock.time()
        cmd = Command(f"c{next(_ids)}", device, name, args, "test", now, now + 60)
        return await self.ctx.commanders[device].execute(cmd)


def venue(broker: Mosquitto, devices: list[tuple[str, str, str]], client_id: str) -> str:
    text = MINIMAL_VENUE + (
        f'\n[[brokers]]\nid = "local"\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'client_id = "{client_id}"\nkeepalive_s = 5\n'
    )
    for dev_id, profile, address in devices:
        text += (
            f'\n[[devices]]\nid = "{dev_id}"\nprofile = "{profile}"\n'
            f'broker = "local"\naddress = "{address}"\n'
        )
    return text


@pytest.fixture
async def rig_factory(tmp_path: Path, clock: ManualClock) -> AsyncIterator[object]:
    rigs: list[Rig] = []
    writers: list[tuple[StoreWriter, asyncio.Task[None]]] = []

    async def start(
        broker: Mosquitto, devices: list[tuple[str, str, str]], store: bool = False
    ) -> Rig:
        """`store`: readings also go to a store writer (acknowledged after its commits)."""
        path = tmp_path / f"venue{len(rigs)}.toml"
        path.write_text(venue(broker, devices, f"rig-{tmp_path.name}-{len(rigs)}"))
        cfg = load_config(str(path))
        lib = load_library()
        bus = Bus()
        sub = bus.subscribe("test", (Reading,), 1_000_000, Overflow.DROP_NEWEST)
        writer = None
        if store:
            writer = StoreWriter(str(tmp_path / f"store{len(rigs)}.db"), telemetry_sync="normal")
            writer.attach(bus)
            await writer.open()
            writers.append((writer, asyncio.create_task(writer.run(), name="test:store")))
        ctx = DriverContext(cfg, bus, clock, HealthRegistry(), store=writer)
        pairs = [(d, lib.profiles[d.profile]) for d in cfg.devices]
        (svc_def,) = factory.build(ctx, pairs)
        service = ctx.shared["mqtt"]["local"]
        task = asyncio.create_task(svc_def.run(), name="test:mqtt")
        rig = Rig(ctx, service, sub, task, clock, writer=writer)
        rigs.append(rig)
        await until(lambda: service.link.connected, 10, "driver connected")
        return rig

    try:
        yield start
    finally:
        for r in rigs:
            r.task.cancel()
            await asyncio.gather(r.task, return_exceptions=True)
        for w, t in writers:
            await w.stop()
            await t
