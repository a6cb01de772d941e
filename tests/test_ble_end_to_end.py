"""Real bleak <-> real D-Bus <-> python-dbusmock's BlueZ: every BLE profile decoded through the
driver into readings; dedupe; RSSI and battery points; offline; garbage counted; watchdog."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from simulators.ble.sensors import SimSensor
from tests.helpers import until
from tests.peers import ble as ble_peer
from tests.peers.ble import ADAPTER, Rig

bluez_bus = ble_peer.bluez_bus
bluez = ble_peer.bluez


# profile, decoder, local name, temperature resolution, humidity resolution
PROFILES = [
    ("bthome-v2", "bthome", "", 0.01, 0.01),
    ("xiaomi-lywsd03mmc-pvvx", "pvvx_custom", "", 0.01, 0.01),
    ("xiaomi-lywsd03mmc-atc1441", "atc1441", "", 0.1, 1.0),
    ("govee-h5075", "govee_h5075", "GVH5075_1A2B", 0.1, 0.1),
    ("govee-h5074", "govee_h5074", "Govee_H5074_1A2B", 0.01, 0.01),
    ("inkbird-ibs-th1", "inkbird", "sps", 0.01, 0.01),
    ("inkbird-ibs-th2", "inkbird", "tps", 0.01, 0.01),
    ("thermopro-tp357", "thermopro", "TP357 (1A2B)", 0.1, 1.0),
]


@pytest.mark.parametrize(("profile_id", "decoder", "name", "t_res", "h_res"), PROFILES)
async def test_profile_decoded_end_to_end(bluez, profile_id, decoder, name, t_res, h_res):
    mac = "A4:C1:38:00:10:01"
    async with Rig([(mac, profile_id)]) as rig:
        sim = SimSensor(bluez, ADAPTER, mac, decoder, name=name, seed=7)
        await sim.add()
        temp, hum = await sim.measure(rig.clock.time())
        await until(lambda: "temperature" in {r.point for r in rig.pull()}, 5, "a reading")
        got = {r.point: r for r in rig.readings}
        assert got["temperature"].value == pytest.approx(temp, abs=t_res)
        assert got["temperature"].unit == "°C"
        assert got["temperature"].device_id == "s-01"
        assert got["temperature"].ts == rig.clock.time()
        assert got["humidity"].value == pytest.approx(hum, abs=h_res + 0.5 * h_res)
        expected_battery = 100 if decoder == "thermopro" else 87
        assert got["battery"].value == expected_battery
        assert got["rssi"].unit == "dBm" and got["rssi"].value in range(-66, -57)
        assert rig.device_health("s-01").connected


async def test_kegtron_keg_levels(bluez):
    mac = "D7:00:00:00:4B:01"
    async with Rig([(mac, "kegtron-kt")]) as rig:
        sim = SimSensor(bluez, ADAPTER, mac, "kegtron")
        await sim.add()
        for _ in range(4):
            await sim.measure(rig.clock.time())
        await until(lambda: len({r.point for r in rig.pull()}) >= 4, 5, "keg readings")
        got = {r.point: r.value for r in rig.readings}
        assert got["keg_size"] == pytest.approx(58.674)
        assert got["volume_dispensed"] in (0.5, 1.0, 1.5, 2.0)
        assert got["volume_remaining"] == pytest.approx(58.674 - got["volume_dispensed"])


async def test_repeats_of_one_packet_are_dropped_new_ids_pass(bluez):
    mac = "A4:C1:38:00:20:01"
    async with Rig([(mac, "bthome-v2")]) as rig:
        sim = SimSensor(bluez, ADAPTER, mac, "bthome")
        await sim.add()
        temp, hum = await sim.measure(rig.clock.time())
        for _ in range(3):  # the same packet id, advertised again 1 s apart
            await rig.clock.advance(1.0)
            await sim.repeat(temp, hum)
        await until(lambda: rig.sensors[0].adverts >= 4, 5, "four adverts")
        rig.pull()
        assert rig.values("temperature") == [pytest.approx(temp)]
        assert rig.sensors[0].deduper.dropped == 3
        await sim.measure(rig.clock.time())
        await until(lambda: bool(rig.pull()) and len(rig.values("temperature")) == 2, 5, "new id")


async def test_garbage_counted_offline_then_back(bluez):
    mac = "A4:C1:38:00:30:01"
    async with Rig([(mac, "xiaomi-lywsd03mmc-pvvx")], watchdog_s=3600) as rig:
        sim = SimSensor(bluez, ADAPTER, mac, "pvvx_custom", seed=3)
        await sim.add()
        await sim.measure(rig.clock.time())
        await until(lambda: rig.pull() != [], 5, "first reading")
        health = rig.device_health("s-01")
        sim.garbage = True
        for _ in range(5):
            await sim.measure(rig.clock.time())
        await until(lambda: health.malformed >= 5, 5, "garbage counted")
        assert rig.task is not None and not rig.task.done()
        # silence: the sensor goes offline after offline_after_s (300 s)
        sim.silent = True
        await rig.clock.advance(400)
        assert not health.connected and health.outage_since is not None
        sim.silent = sim.garbage = False
        before = len(rig.pull())
        await sim.measure(rig.clock.time())
        await until(lambda: len(rig.pull()) > before, 5, "reading after outage")
        assert health.connected and health.outage_since is None


async def test_watchdog_restarts_scan_after_adapter_disappears(bluez):
    mac = "A4:C1:38:00:40:01"
    async with Rig([(mac, "bthome-v2")], watchdog_s=30) as rig:
        sim = SimSensor(bluez, ADAPTER, mac, "bthome")
        await sim.add()
        await sim.measure(rig.clock.time())
        await until(lambda: rig.pull() != [], 5, "first reading")
        await bluez.remove_adapter(ADAPTER)
        # no adverts for watchdog_s: the scan is restarted, which fails while hci0 is gone
        for _ in range(10):
            await rig.clock.advance(10)
            await asyncio.sleep(0.05)
        assert rig.scan.restarts >= 1 and not rig.scan.scanning
        await bluez.add_adapter(ADAPTER)
        for _ in range(40):
            if rig.scan.scanning:
                break
            await rig.clock.advance(10)
            await asyncio.sleep(0.05)
        assert rig.scan.scanning and rig.scan.starts >= 2
        assert rig.backend.mode == "passive"  # the mock's BlueZ accepts advertisement monitors
        sim = SimSensor(bluez, ADAPTER, mac, "bthome", seed=9)
        await sim.add()
        before = len(rig.pull())
        await sim.measure(rig.clock.time())
        await until(lambda: len(rig.pull()) > before, 5, "reading after recovery")


async def test_factory_builds_one_scanner_and_a_gatt_session_per_logger(bluez, write_config):
    from drivers.base import DriverContext
    from drivers.ble.factory import build
    from edge_agent.bus import Bus
    from edge_agent.clock import ManualClock
    from edge_agent.config.loader import load_config
    from edge_agent.health import HealthRegistry
    from tests.conftest import MINIMAL_VENUE
    from tests.peers.ble import LIB, collect, drain

    text = MINIMAL_VENUE + (
        '\n[ble]\nadapter = "hci0"\nwatchdog_s = 30\n'
        '\n[[devices]]\nid = "cellar-rh"\nprofile = "xiaomi-lywsd03mmc-pvvx"\n'
        'address = "A4:C1:38:00:70:01"\n'
        '\n[[devices]]\nid = "walkin-logger"\nprofile = "beerflow-sim-logger"\n'
        'address = "A4:C1:38:00:70:02"\n'
    )
    cfg = load_config(write_config(text), LIB)
    bus = Bus()
    sub = collect(bus)
    ctx = DriverContext(cfg, bus, ManualClock(), HealthRegistry())
    devices = [(d, LIB.get(d.profile)) for d in cfg.devices]
    services = build(ctx, devices)  # type: ignore[arg-type]
    assert [s.name for s in services] == ["ble:hci0", "device:walkin-logger:gatt"]
    scan = ctx.shared["ble"]
    task = asyncio.create_task(scan.run())
    try:
        await until(lambda: scan.scanning, 5, "scanner")
        sim = SimSensor(bluez, ADAPTER, "A4:C1:38:00:70:01", "pvvx_custom")
        await sim.add()
        await sim.measure(ctx.clock.time())
        got = []

        def pulled() -> bool:
            got.extend(drain(sub))
            return bool(got)

        await until(pulled, 5, "reading via factory")
        assert {r.device_id for r in got} == {"cellar-rh"}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await scan.stop()
