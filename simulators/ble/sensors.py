"""Advertising sensors driven by a seeded model and an injected clock, pushed into the BlueZ
mock as Device1 property updates (what BlueZ does for every advert it hears).

Faults: `silent` (stops advertising), `garbage` (random payload bytes of the right shape)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from edge_agent.clock import Clock
from firmware_profiles.sections.ble import full_uuid
from simulators.ble import payloads
from simulators.ble.bluez_mock import BluezControl

BTHOME = full_uuid("fcd2")
ENV = full_uuid("181a")


@dataclass
class FridgeAir:
    """A fridge's air: a slow compressor cycle around the setpoint plus noise."""

    seed: int
    setpoint: float = 3.5
    humidity: float = 82.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def at(self, t: float) -> tuple[float, float]:
        cycle = 1.2 * math.sin(2 * math.pi * t / 1800)
        temp = self.setpoint + cycle + self.rng.gauss(0, 0.05)
        return round(temp, 2), round(self.humidity + self.rng.gauss(0, 0.5), 1)


@dataclass
class AdvertFrame:
    service_data: dict[str, bytes] | None = None
    manufacturer_data: dict[int, bytes] | None = None


def frame(decoder: str, mac: str, temp: float, hum: float, counter: int) -> AdvertFrame:
    """The advert a sensor of this format sends for one measurement."""
    battery = 87
    if decoder == "bthome":
        return AdvertFrame({BTHOME: payloads.bthome(counter, temp, hum, battery)})
    if decoder == "pvvx_custom":
        raw = payloads.encode_pvvx_custom(mac, temp, hum, 2950, battery, counter)
        return AdvertFrame({ENV: raw})
    if decoder == "atc1441":
        return AdvertFrame(
            {ENV: payloads.encode_atc1441(mac, temp, round(hum), battery, 2950, counter)}
        )
    if decoder == "govee_h5075":
        return AdvertFrame(manufacturer_data={0xEC88: payloads.govee_h5075(temp, hum, battery)})
    if decoder == "govee_h5074":
        return AdvertFrame(manufacturer_data={0xEC88: payloads.govee_h5074(temp, hum, battery)})
    if decoder == "inkbird":
        company, body = payloads.inkbird(temp, hum, battery)
        return AdvertFrame(manufacturer_data={company: body})
    if decoder == "thermopro":
        company, body = payloads.thermopro(temp, round(hum), 2)
        return AdvertFrame(manufacturer_data={company: body})
    if decoder == "kegtron":
        dispensed = min(58674, 500 * counter)
        return AdvertFrame(manufacturer_data={0xFFFF: payloads.kegtron(58674, 58674, dispensed)})
    raise ValueError(f"no simulator for decoder {decoder!r}")


class SimSensor:
    def __init__(
        self,
        ctl: BluezControl,
        adapter: str,
        mac: str,
        decoder: str,
        name: str = "",
        seed: int = 1,
        rssi: int = -62,
    ) -> None:
        self.ctl = ctl
        self.adapter = adapter
        self.mac = mac.upper()
        self.decoder = decoder
        self.name = name
        self.model = FridgeAir(seed)
        self.rng = random.Random(seed)
        self.rssi = rssi
        self.counter = 0
        self.path = ""
        self.silent = False
        self.garbage = False
        self.sent = 0

    async def add(self) -> None:
        self.path = await self.ctl.add_device(self.adapter, self.mac, self.name)

    async def measure(self, now: float) -> tuple[float, float]:
        """Take a new measurement (new packet id) and advertise it."""
        self.counter = (self.counter + 1) & 0xFF
        temp, hum = self.model.at(now)
        await self.repeat(temp, hum)
        return temp, hum

    async def repeat(self, temp: float, hum: float) -> None:
        """Advertise (again) the given measurement with the current packet id."""
        if self.silent:
            return
        f = frame(self.decoder, self.mac, temp, hum, self.counter)
        if self.garbage:
            f = self._scramble(f)
        rssi = self.rssi + self.rng.randint(-3, 3)
        await self.ctl.advertise(
            self.path, rssi, service_data=f.service_data, manufacturer_data=f.manufacturer_data
        )
        self.sent += 1

    def _scramble(self, f: AdvertFrame) -> AdvertFrame:
        def junk(b: bytes) -> bytes:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(len(b) + 1)))

        return AdvertFrame(
            {k: junk(v) for k, v in f.service_data.items()} if f.service_data else None,
            {k: junk(v) for k, v in f.manufacturer_data.items()} if f.manufacturer_data else None,
        )


async def advertise_every(sensors: list[SimSensor], clock: Clock, interval_s: float) -> None:
    """Drive the sensors from the clock: a new measurement every interval (demo and soak)."""
    while True:
        for s in sensors:
            await s.measure(clock.time())
        await clock.sleep(interval_s)
