"""BlueZ stand-in for BLE tests: a private dbus-daemon with python-dbusmock's bluez5 template,
started once per module, always killed by process group. bleak finds it through
DBUS_SYSTEM_BUS_ADDRESS, which is set before bleak connects and restored afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.ble.backend import BleakScannerBackend
from drivers.ble.scan_service import BleScanService
from drivers.ble.sensor import BleSensor
from edge_agent.bus import Bus, Overflow, Subscription
from edge_agent.clock import ManualClock
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth, HealthRegistry
from edge_agent.messages import Reading
from firmware_profiles.loader import load_library
from simulators.ble.bluez_mock import BluezControl, MockError, PrivateBluez
from simulators.ble.peripheral import SimPeripheral
from tests.helpers import until

ADAPTER = "hci0"
LIB = load_library()


@pytest.fixture(scope="module")
def bluez_bus() -> Iterator[str]:
    mock = PrivateBluez()
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        address = mock.start()
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
        yield address
    finally:
        mock.stop()
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old


@pytest.fixture
async def bluez(bluez_bus: str) -> AsyncIterator[BluezControl]:
    """A fresh hci0 for each test (the template breaks on Mock.Reset, so add/remove instead)."""
    ctl = await BluezControl.connect(bluez_bus)
    with contextlib.suppress(MockError):
        await ctl.remove_adapter(ADAPTER)
    await ctl.add_adapter(ADAPTER)
    try:
        yield ctl
    finally:
        with contextlib.suppress(MockError):
            await ctl.remove_adapter(ADAPTER)
        await ctl.close()
        await _close_bleak_connection()


async def _close_bleak_connection() -> None:
    """bleak keeps one BlueZ connection per event loop and closes it only when a later loop
    starts; close this test's one now so no socket outlives its loop."""
    from bleak.backends.bluezdbus import manager

    # bleak's per-connection buses close their sockets a few loop turns after disconnect().
    await asyncio.sleep(0.1)

    inst = manager._global_instances.pop(asyncio.get_running_loop(), None)
    if inst is not None and inst._bus is not None:
        inst._bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(inst._bus.wait_for_disconnect(), 2)  # type: ignore[no-untyped-call]


def collect(bus: Bus) -> Subscription:
    return bus.subscribe("test", [Reading], 100_000, Overflow.DROP_OLDEST)


def drain(sub: Subscription) -> list[Reading]:
    out = []
    while (r := sub.channel.drop_oldest()) is not None:
        out.append(r)
    return out


class Rig:
    """The BLE scan service on the mock's hci0 with a ManualClock and a collecting bus."""

    def __init__(self, devices: list[tuple[str, str]], watchdog_s: float = 60.0) -> None:
        self.clock = ManualClock(start=1_750_000_000.0)
        self.bus = Bus()
        self.sub = collect(self.bus)
        self.health = HealthRegistry()
        self.sensors = []
        for mac, profile_id in devices:
            prof = LIB.get(profile_id)
            assert prof is not None
            dev = DeviceConfig(id=f"s-{mac[-2:].lower()}", profile=profile_id, address=mac)
            self.sensors.append(BleSensor(dev, prof, self.health.register(dev.id, "ble")))
        matches = [s.section.match for s in self.sensors]
        self.backend = BleakScannerBackend(ADAPTER, matches)
        self.scan = BleScanService(
            ADAPTER,
            self.sensors,
            self.backend,
            self.bus,
            self.clock,
            watchdog_s,
            random.Random(1),
        )
        self.task: asyncio.Task[None] | None = None
        self.readings: list[Reading] = []

    async def __aenter__(self) -> Rig:
        self.task = asyncio.create_task(self.scan.run())
        await until(lambda: self.scan.scanning, 5, "scanner started")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.scan.stop()

    def device_health(self, device_id: str) -> DeviceHealth:
        h = self.health.get(device_id)
        assert h is not None
        return h

    def values(self, point: str) -> list[object]:
        return [r.value for r in self.readings if r.point == point]

    def pull(self) -> list[Reading]:
        self.readings = [*self.readings, *drain(self.sub)]
        return self.readings


@pytest.fixture
async def bluezoo_bus() -> AsyncIterator[str]:
    """BlueZoo on a private bus: hci0 for the box, hci1 for a simulated peripheral. Fresh per
    test (0.2 s): BlueZoo 1.0.2 keeps a connected device's GATT objects after a disconnect, so
    a second connection to the same peripheral sees every characteristic twice."""
    from simulators.ble.bluezoo_peer import PrivateBlueZoo

    zoo = PrivateBlueZoo(scan_interval_s=1)
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        address = zoo.start()
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
        await zoo.wait_ready()
        yield address
    finally:
        zoo.stop()
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old


@pytest.fixture
async def bluezoo_peripheral(bluezoo_bus: str) -> AsyncIterator[SimPeripheral]:
    """The simulated logger (beerflow-sim-logger's GATT service) advertising on hci1."""
    prof = LIB.get("beerflow-sim-logger")
    assert prof is not None and prof.ble is not None and prof.ble.gatt is not None
    peripheral = SimPeripheral(prof.ble.gatt)
    try:
        await peripheral.start(bluezoo_bus, "hci1")
        yield peripheral
    finally:
        await peripheral.stop()
        await _close_bleak_connection()
