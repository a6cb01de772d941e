"""A simulated venue of mixed devices, speaking the real protocols on loopback, for
`bench/footprint.py --mixed` (run as its own process so its CPU and memory stay out of the
agent's figures).

Default mix (200 devices): 110 Modbus TCP (Dixell XR77U/XR60CX cabinets on their own ports,
Carel ir33 cabinets and Eastron meters behind two gateways), 50 MQTT devices on a private
Mosquitto (Shelly, Tasmota, Zigbee2MQTT sensors and plugs, generic JSON boards), 10 OPC 30200
combi steamers on one asyncua server, 20 BLE sensors on a private dbus-daemon with
python-dbusmock's bluez5 template, and 10 MT-SICS scales on socat pty pairs.

It writes the venue-config blocks for these devices to `<workdir>/fleet.toml`, then prints one
line `READY {json}` (config path, environment the agent needs, device counts) and serves until
SIGTERM/SIGINT, when it stops every peer it started.

    .venv/bin/python bench/mixed_fleet.py --workdir DIR [--modbus 110 --mqtt 50 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from drivers.mqtt.broker import Mosquitto
from edge_agent.clock import Clock, SystemClock
from simulators.ble.bluez_mock import BluezControl, PrivateBluez
from simulators.ble.sensors import SimSensor
from simulators.modbus.carel_ir33 import CarelIr33Slave
from simulators.modbus.dixell_server import start_fleet
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.responders import TcpResponder
from simulators.modbus.slave import MapSlave
from simulators.mqtt.devices import (
    GenericSensorSim,
    ShellyPlugSim,
    SimDevice,
    TasmotaPlugSim,
    Z2mPlugSim,
    Z2mSensorSim,
)
from simulators.opcua.combi_model import CombiModel, Mode
from simulators.opcua.combi_server import CombiServer
from simulators.serial.mtsics_scale import FakeScale, PtyPair
from simulators.serial.scale_model import KegModel, ScaleModel

log = logging.getLogger("mixed_fleet")

Stop = Callable[[], Awaitable[None]]
Call = Callable[[], Awaitable[None]]

APPLIANCES = ("Coffeemaker", "WaterKettle", "Toaster", "MicrowaveOven", "Dishwasher")
# profile, BLE decoder, local name (the sensors that put one in their adverts)
BLE_KINDS = (
    ("bthome-v2", "bthome", ""),
    ("xiaomi-lywsd03mmc-pvvx", "pvvx_custom", ""),
    ("xiaomi-lywsd03mmc-atc1441", "atc1441", ""),
    ("govee-h5075", "govee_h5075", "GVH5075_{:04X}"),
    ("inkbird-ibs-th2", "inkbird", "tps"),
    ("thermopro-tp357", "thermopro", "TP357 ({:04X})"),
    ("kegtron-kt", "kegtron", ""),
)


@dataclass(frozen=True)
class FleetSpec:
    modbus: int = 110
    mqtt: int = 50
    opcua: int = 10
    ble: int = 20
    serial: int = 10
    poll_s: float = 5.0  # Modbus, OPC-UA fallback polling and scales
    mqtt_period_s: float = 10.0  # Tasmota TelePeriod-like
    ble_period_s: float = 3.0  # one advert per sensor this often
    ble_measure_every: int = 3  # a new measurement (packet id) every N adverts
    opcua_security: str = "sign_and_encrypt"
    seed: int = 1


def device_block(dev_id: str, profile: str, poll_s: float | None = None, **fields: object) -> str:
    out = f'\n[[devices]]\nid = "{dev_id}"\nprofile = "{profile}"\n'
    for key, value in fields.items():
        out += f"{key} = {json.dumps(value)}\n"
    if poll_s is not None:
        out += f"poll_interval_s = {poll_s}\n"
    return out


def split(total: int, weights: tuple[float, ...]) -> list[int]:
    """`total` shared by weight; the rounding remainder goes to the first share."""
    parts = [int(total * w) for w in weights]
    parts[0] += total - sum(parts)
    return parts


async def spread(calls: list[Call], period_s: float, clock: Clock, what: str) -> None:
    """Call each of `calls` once per period, evenly staggered (devices do not publish in
    lockstep). A failing call is logged and the cadence goes on."""
    if not calls:
        return
    step = period_s / len(calls)
    due = clock.time()
    failed = False
    while True:
        for call in calls:
            try:
                await call()
            except Exception as exc:  # a simulator hiccup must not end the whole fleet
                if not failed:
                    log.warning("%s: %s (further failures not logged)", what, exc)
                    failed = True
            due += step
            await clock.sleep(max(0.0, due - clock.time()))


class Fleet:
    def __init__(self, workdir: str, spec: FleetSpec, clock: Clock) -> None:
        self.workdir = workdir
        self.spec = spec
        self.clock = clock
        self.rng = random.Random(spec.seed)
        self.blocks: list[str] = []
        self.env: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._stops: list[Stop] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _every(self, calls: list[Call], period_s: float, what: str) -> None:
        task = asyncio.create_task(spread(calls, period_s, self.clock, what), name=f"sim:{what}")
        self._tasks.append(task)

    async def start(self) -> None:
        s = self.spec
        if s.modbus:
            await self._modbus(s.modbus)
        if s.mqtt:
            await self._mqtt(s.mqtt)
        if s.opcua:
            await self._opcua(s.opcua)
        if s.ble:
            await self._ble(s.ble)
        if s.serial:
            await self._serial(s.serial)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for stop in reversed(self._stops):
            try:
                await stop()
            except Exception as exc:  # keep stopping the others
                log.warning("stop failed: %s", exc)

    # ---- Modbus TCP ---------------------------------------------------------------------------

    async def _modbus(self, n: int) -> None:
        gateways = min(2, n // 10)
        xr60 = (n - 4 * gateways) // 16
        xr77 = n - 4 * gateways - xr60
        poll = self.spec.poll_s
        seed = self.spec.seed * 1000
        for variant, count, profile in (
            ("xr77u", xr77, "dixell-xr77u"),
            ("xr60cx", xr60, "dixell-xr60cx"),
        ):
            sims = await start_fleet(count, seed=seed, clock=self.clock, variant=variant)  # type: ignore[arg-type]
            seed += count
            for sim in sims:
                self._stops.append(sim.stop)
            for i, sim in enumerate(sims):
                self.blocks.append(
                    device_block(
                        f"{variant}-{i:03d}", profile, poll, host="127.0.0.1", port=sim.port
                    )
                )
        for g in range(gateways):
            meter: Literal["sdm120", "sdm630"] = "sdm120" if g % 2 == 0 else "sdm630"
            slaves: dict[int, MapSlave] = {
                unit: CarelIr33Slave(FridgeModel(self.clock.time(), seed=seed + unit), self.clock)
                for unit in (1, 2, 3)
            }
            slaves[4] = EnergyMeterSlave(self.clock, seed=seed + 4, model=meter)
            seed += 5
            gw = TcpResponder(slaves)
            await gw.start()
            self._stops.append(gw.stop)
            for unit in (1, 2, 3):
                self.blocks.append(
                    device_block(
                        f"carel-{g}-{unit}",
                        "carel-ir33",
                        poll,
                        host="127.0.0.1",
                        port=gw.port,
                        unit_id=unit,
                    )
                )
            self.blocks.append(
                device_block(
                    f"meter-{g}",
                    f"eastron-{meter}",
                    poll,
                    host="127.0.0.1",
                    port=gw.port,
                    unit_id=4,
                )
            )
        self.counts["modbus"] = n

    # ---- MQTT ---------------------------------------------------------------------------------

    async def _mqtt(self, n: int) -> None:
        broker = Mosquitto(os.path.join(self.workdir, "mqtt-broker"))
        await asyncio.to_thread(broker.start)

        async def stop_broker() -> None:
            await asyncio.to_thread(broker.stop)

        self._stops.append(stop_broker)
        h, p, clock = broker.host, broker.port, self.clock
        shelly, tasmota, z2m_t, z2m_plug, generic = split(n, (0.3, 0.3, 0.2, 0.1, 0.1))
        devices: list[tuple[str, str, SimDevice]] = []
        seed = self.spec.seed * 2000
        for i in range(shelly):
            app = APPLIANCES[i % len(APPLIANCES)]
            sim: SimDevice = ShellyPlugSim(h, p, f"shellyplusplugs-{i:06x}", clock, seed + i, app)
            devices.append((f"shelly-{i:02d}", "shelly-plus-plug-s", sim))
        for i in range(tasmota):
            app = APPLIANCES[(i + 2) % len(APPLIANCES)]
            sim = TasmotaPlugSim(h, p, f"tasmota_{i:02d}", clock, seed + 100 + i, app)
            devices.append((f"tasmota-{i:02d}", "tasmota-plug", sim))
        for i in range(z2m_t):
            sim = Z2mSensorSim(h, p, f"fridge_sensor_{i:02d}", clock, seed + 200 + i)
            devices.append((f"z2m-temp-{i:02d}", "zigbee2mqtt-temperature-sensor", sim))
        for i in range(z2m_plug):
            sim = Z2mPlugSim(h, p, f"plug_{i:02d}", clock, seed + 300 + i, "Toaster")
            devices.append((f"z2m-plug-{i:02d}", "zigbee2mqtt-plug", sim))
        for i in range(generic):
            sim = GenericSensorSim(h, p, f"board-{i:02d}", clock, seed + 400 + i)
            devices.append((f"board-{i:02d}", "generic-json-sensor", sim))
        for _, _, sim in devices:
            await sim.start()
            self._stops.append(sim.stop)
        self.blocks.append(f'\n[[brokers]]\nid = "bench-mqtt"\nhost = "{h}"\nport = {p}\n')
        for dev_id, profile, sim in devices:
            self.blocks.append(
                device_block(dev_id, profile, broker="bench-mqtt", address=sim.address)
            )
        self._every([sim.tick for _, _, sim in devices], self.spec.mqtt_period_s, "mqtt")
        self.counts["mqtt"] = n

    # ---- OPC-UA -------------------------------------------------------------------------------

    async def _opcua(self, n: int) -> None:
        models: dict[str, CombiModel] = {}
        for i in range(n):
            m = CombiModel(self.clock.time(), seed=self.spec.seed * 3000 + i)
            if i % 2 == 1:  # half the kitchen is cooking
                m.start_program("Roast", Mode.COMBI_STEAMING, 160.0, 5400, 72.0)
            models[f"Combi_{i:02d}"] = m
        security = self.spec.opcua_security
        server = CombiServer(
            models,
            self.clock,
            pki_dir=os.path.join(self.workdir, "opcua-sim-pki"),
            security=(security,),
        )
        await server.start()
        self._stops.append(server.stop)
        for name in models:
            self.blocks.append(
                device_block(
                    name.lower().replace("_", "-"),
                    "opc30200-combi-steamer",
                    self.spec.poll_s,
                    address=f"{server.url}#{name}",
                    security=security,
                )
            )
        self.counts["opcua"] = n

    # ---- BLE ----------------------------------------------------------------------------------

    async def _ble(self, n: int) -> None:
        bluez = PrivateBluez()
        address = await asyncio.to_thread(bluez.start)

        async def stop_bluez() -> None:
            await asyncio.to_thread(bluez.stop)

        self._stops.append(stop_bluez)
        ctl = await BluezControl.connect(address)
        self._stops.append(ctl.close)
        await ctl.add_adapter("hci0")
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = address
        self.blocks.insert(0, '\n[ble]\nadapter = "hci0"\n')
        calls: list[Call] = []
        for i in range(n):
            profile, decoder, name = BLE_KINDS[i % len(BLE_KINDS)]
            mac = f"A4:C1:38:5E:{i // 256:02X}:{i % 256:02X}"
            sensor = SimSensor(
                ctl,
                "hci0",
                mac,
                decoder,
                name.format(i),
                seed=self.spec.seed * 4000 + i,
                rssi=self.rng.randint(-85, -55),
            )
            await sensor.add()
            calls.append(_Advertiser(sensor, self.clock, self.spec.ble_measure_every).advert)
            self.blocks.append(device_block(f"ble-{i:02d}", profile, address=mac))
        self._every(calls, self.spec.ble_period_s, "ble")
        self.counts["ble"] = n

    # ---- serial -------------------------------------------------------------------------------

    async def _serial(self, n: int) -> None:
        models: list[ScaleModel] = []
        for i in range(n):
            pty = PtyPair(self.workdir, f"scale-{i:02d}")
            await pty.start()
            self._stops.append(pty.stop)
            keg = i % 2 == 1
            now = self.clock.time()
            model: ScaleModel = (
                KegModel(seed=i, start=now, litres=30.0 + i)
                if keg
                else ScaleModel(seed=i, start=now)
            )
            fake = (
                FakeScale(
                    model, self.clock, pty.device_path, decimals=2, identity="KegPlatform 150"
                )
                if keg
                else FakeScale(model, self.clock, pty.device_path)
            )
            await fake.start()
            self._stops.append(fake.stop)
            models.append(model)
            bus_id = f"scale-line-{i:02d}"
            self.blocks.append(
                f'\n[[buses]]\nid = "{bus_id}"\ntype = "rs232"\nport = "{pty.host_path}"\n'
                "baudrate = 9600\n"
            )
            profile = "keg-scale-mtsics" if keg else "mettler-toledo-mtsics"
            self.blocks.append(
                device_block(f"scale-{i:02d}", profile, self.spec.poll_s, bus=bus_id)
            )

        async def use_a_scale() -> None:
            model = self.rng.choice(models)
            now = self.clock.time()
            if isinstance(model, KegModel):
                if model.litres_at(now) > 0.6:
                    model.pour(0.568, now, self.rng.uniform(4, 8))  # a pint
            elif model.load_at(now) > 0.05:
                model.ramp_to(0.0, now, 0.0)
            else:
                model.place(round(self.rng.uniform(0.1, 2.5), 3), now)

        self._every([use_a_scale], 30.0 / max(1, n), "scale-life")
        self.counts["serial"] = n


class _Advertiser:
    """One sensor's adverts: a new measurement every `measure_every` adverts, repeats between
    (as pvvx and BTHome sensors repeat each measurement)."""

    def __init__(self, sensor: SimSensor, clock: Clock, measure_every: int) -> None:
        self.sensor = sensor
        self.clock = clock
        self.measure_every = max(1, measure_every)
        self.n = 0
        self.last: tuple[float, float] | None = None

    async def advert(self) -> None:
        if self.last is None or self.n % self.measure_every == 0:
            self.last = await self.sensor.measure(self.clock.time())
        else:
            await self.sensor.repeat(*self.last)
        self.n += 1


async def serve(workdir: str, spec: FleetSpec) -> int:
    os.makedirs(workdir, exist_ok=True)
    fleet = Fleet(workdir, spec, SystemClock())
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    try:
        await fleet.start()
        path = os.path.join(workdir, "fleet.toml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("".join(fleet.blocks))
        print("READY " + json.dumps({"config": path, "env": fleet.env, "counts": fleet.counts}))
        sys.stdout.flush()
        await done.wait()
    finally:
        await fleet.stop()
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True)
    d = FleetSpec()
    for name in ("modbus", "mqtt", "opcua", "ble", "serial"):
        ap.add_argument(f"--{name}", type=int, default=getattr(d, name))
    ap.add_argument("--poll", type=float, default=d.poll_s)
    ap.add_argument("--mqtt-period", type=float, default=d.mqtt_period_s)
    ap.add_argument("--ble-period", type=float, default=d.ble_period_s)
    ap.add_argument(
        "--opcua-security", choices=("none", "sign", "sign_and_encrypt"), default=d.opcua_security
    )
    ap.add_argument("--seed", type=int, default=d.seed)
    a = ap.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="mixed_fleet %(levelname)s %(name)s: %(message)s"
    )
    spec = FleetSpec(
        modbus=a.modbus,
        mqtt=a.mqtt,
        opcua=a.opcua,
        ble=a.ble,
        serial=a.serial,
        poll_s=a.poll,
        mqtt_period_s=a.mqtt_period,
        ble_period_s=a.ble_period,
        opcua_security=a.opcua_security,
        seed=a.seed,
    )
    sys.exit(asyncio.run(serve(a.workdir, spec)))


if __name__ == "__main__":
    main()
