"""The demo venue's BLE part: its private BlueZ and sensors, the venue blocks it returns, and
the real driver (drivers.registry.build_services) reading every demo sensor."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from drivers.base import DriverContext
from drivers.registry import build_services
from edge_agent.bus import Bus
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.health import HealthRegistry
from edge_agent.messages import Reading
from edge_agent.supervisor import Service
from simulators.ble import demo_part
from simulators.ble.demo import SENSORS
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until
from tests.peers.ble import LIB, _close_bleak_connection, collect, drain

MAIN_POINT = {"kegtron-kt": "volume_remaining"}


async def test_demo_sensors_are_read_by_the_driver(tmp_path, write_config):
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    clock = ManualClock(start=1_750_000_000.0)
    part = await demo_part(str(tmp_path), clock)
    tasks: list[asyncio.Task[None]] = []
    try:
        assert os.environ["DBUS_SYSTEM_BUS_ADDRESS"] != old
        cfg = load_config(write_config(MINIMAL_VENUE + part.config_toml), LIB)
        assert [d.id for d in cfg.devices] == [s.id for s in SENSORS]
        bus = Bus()
        sub = collect(bus)
        ctx = DriverContext(cfg, bus, clock, HealthRegistry())
        services = build_services(ctx, [(d, p) for d in cfg.devices if (p := LIB.get(d.profile))])
        assert [s.name for s in services] == ["ble:hci0"]
        tasks = [asyncio.create_task(run(s)) for s in services]
        scan = ctx.shared["ble"]
        await until(lambda: scan.scanning, 5, "scanner")
        got: list[Reading] = []

        def main_values() -> dict[str, list[object]]:
            got.extend(drain(sub))
            out: dict[str, list[object]] = {}
            for s in SENSORS:
                point = MAIN_POINT.get(s.profile, "temperature")
                out[s.id] = [r.value for r in got if r.device_id == s.id and r.point == point]
            return out

        # every sensor measures once a minute of demo time
        for n in (1, 2):
            await clock.advance(60)
            await until(every_sensor_has(main_values, n), 5, f"round {n}")
        values = main_values()
        for s in SENSORS:
            if s.profile == "kegtron-kt":
                assert as_float(values[s.id][1]) < as_float(values[s.id][0])  # beer was poured
            else:
                assert abs(as_float(values[s.id][0]) - s.setpoint) < 2.0
        assert scan.unknown == 0
    finally:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if tasks:
            await ctx.shared["ble"].stop()
        await _close_bleak_connection()
        await part.stop()
    assert os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") == old


async def run(service: Service) -> None:
    await service.run()


def every_sensor_has(values: Callable[[], dict[str, list[object]]], n: int) -> Callable[[], bool]:
    return lambda: all(len(v) >= n for v in values().values())


def as_float(v: object) -> float:
    assert isinstance(v, int | float)
    return float(v)
