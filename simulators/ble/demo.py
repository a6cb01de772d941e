"""The BLE part of the demo venue: a private D-Bus with python-dbusmock's BlueZ (adapter hci0)
and four advertising sensors driven by the demo clock — a BTHome cellar sensor, a pvvx
fridge thermometer, a Govee hygrometer in the dry store and a Kegtron keg monitor.

The agent runs in the demo's process and bleak opens its BlueZ connection the first time it
scans, so pointing `DBUS_SYSTEM_BUS_ADDRESS` at the private bus here (before the agent starts)
is enough; `stop()` puts the old value back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from edge_agent.clock import Clock
from simulators.ble.bluez_mock import BluezControl, MockError, PrivateBluez
from simulators.ble.sensors import FridgeAir, SimSensor, advertise_every
from simulators.demo_part import DemoPart

ADAPTER = "hci0"
ADVERT_INTERVAL_S = 60.0  # one measurement a minute (clock time) per sensor


@dataclass(frozen=True)
class DemoSensor:
    id: str
    profile: str
    decoder: str
    mac: str
    label: str
    zone: str
    setpoint: float
    humidity: float


SENSORS = (
    DemoSensor(
        "cellar-climate",
        "bthome-v2",
        "bthome",
        "A4:C1:38:DE:00:01",
        "Beer cellar",
        "cellar",
        11.5,
        72.0,
    ),
    DemoSensor(
        "wine-fridge",
        "xiaomi-lywsd03mmc-pvvx",
        "pvvx_custom",
        "A4:C1:38:DE:00:02",
        "Back-bar wine fridge",
        "bar",
        7.0,
        60.0,
    ),
    DemoSensor(
        "dry-store",
        "govee-h5075",
        "govee_h5075",
        "A4:C1:38:DE:00:03",
        "Dry store",
        "kitchen",
        18.0,
        55.0,
    ),
    DemoSensor(
        "keg-tap-1",
        "kegtron-kt",
        "kegtron",
        "D7:00:00:DE:00:04",
        "Keg on tap 1",
        "cellar",
        11.5,
        72.0,
    ),
)


def devices_toml() -> str:
    blocks = []
    for s in SENSORS:
        blocks.append(
            "\n[[devices]]\n"
            f'id = "{s.id}"\n'
            f'profile = "{s.profile}"\n'
            f'label = "{s.label}"\n'
            f'zone = "{s.zone}"\n'
            f'address = "{s.mac}"\n'
        )
    return "".join(blocks)


async def demo_part(workdir: str, clock: Clock) -> DemoPart:
    """`workdir` is unused: everything lives on the private bus."""
    mock = PrivateBluez()
    address = await asyncio.to_thread(mock.start)
    ctl: BluezControl | None = None
    try:
        ctl = await BluezControl.connect(address)
        await ctl.add_adapter(ADAPTER)
        sims = []
        for i, s in enumerate(SENSORS):
            sim = SimSensor(ctl, ADAPTER, s.mac, s.decoder, seed=11 + i, rssi=-58 - 6 * i)
            sim.model = FridgeAir(11 + i, setpoint=s.setpoint, humidity=s.humidity)
            await sim.add()
            sims.append(sim)
    except BaseException:
        if ctl is not None:
            await ctl.close()
        await asyncio.to_thread(mock.stop)
        raise
    control = ctl
    old_address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
    adverts = asyncio.create_task(
        advertise_every(sims, clock, ADVERT_INTERVAL_S), name="sim:ble-adverts"
    )

    async def stop() -> None:
        adverts.cancel()
        with contextlib.suppress(asyncio.CancelledError, MockError):
            await adverts
        await control.close()
        await asyncio.to_thread(mock.stop)
        if os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") == address:
            if old_address is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old_address

    return DemoPart(
        devices_toml(),
        stop,
        f"{len(SENSORS)} BLE sensors (BTHome, pvvx, Govee, Kegtron) on a simulated BlueZ",
    )
