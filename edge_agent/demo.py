"""`make demo`: a simulated venue (fridges and a freezer speaking real Modbus TCP on loopback),
the agent polling them into a real store, and a live view printed until Ctrl-C or --duration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass

from drivers.modbus.simulator.dixell_server import FridgeSimulator
from drivers.modbus.simulator.fridge_model import FridgeModel, FridgeParams
from edge_agent.bus import Overflow
from edge_agent.messages import Reading
from edge_agent.supervisor import Service


class ScaledClock:
    """Simulated equipment runs `speed` times faster than the wall clock (defrosts in minutes)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0 = time.time()
        self._m0 = time.monotonic()

    def time(self) -> float:
        return self._t0 + (time.time() - self._t0) * self.speed

    def monotonic(self) -> float:
        return self._m0 + (time.monotonic() - self._m0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


@dataclass(frozen=True)
class DemoUnit:
    id: str
    label: str
    zone: str
    setpoint: float


UNITS = (
    DemoUnit("walk-in-cold-room", "Walk-in cold room", "kitchen", 3.0),
    DemoUnit("reach-in-fridge", "Reach-in fridge (line)", "kitchen", 4.0),
    DemoUnit("freezer", "Chest freezer", "kitchen", -20.0),
    DemoUnit("bar-fridge", "Back-bar bottle fridge", "bar", 5.0),
)


def _unit(i: int) -> DemoUnit:
    if i < len(UNITS):
        return UNITS[i]
    return DemoUnit(f"fridge-{i + 1:03d}", f"Fridge {i + 1}", "kitchen", 3.0)


async def start_demo_fleet(count: int, clock: ScaledClock, seed: int = 7) -> list[FridgeSimulator]:
    sims = []
    for i in range(count):
        unit = _unit(i)
        params = FridgeParams(setpoint=unit.setpoint)
        if unit.setpoint < -10:
            params.evaporator_floor = -30.0
            params.defrost_end_evaporator = 5.0
        sim = FridgeSimulator(FridgeModel(clock.time(), seed=seed + i, params=params), clock)
        await sim.start()
        sims.append(sim)
    return sims


def demo_config(sims: list[FridgeSimulator], poll_s: float) -> str:
    lines = [
        "# Written by `beerflow-edge demo`: a simulated venue on loopback.",
        "[venue]",
        'id = "demo-arms"',
        'name = "The Demo Arms"',
        'timezone = "Europe/London"',
        'locale = "en"',
        'temperature_unit = "C"',
        'food_safety_region = "uk"',
        "",
        "[storage]",
        'path = "store.db"',
        "disk_quota_mb = 256",
        "",
        "[api]",
        'socket = "api.sock"',
    ]
    for i, sim in enumerate(sims):
        unit = _unit(i)
        lines += [
            "",
            "[[devices]]",
            f'id = "{unit.id}"',
            'profile = "dixell-xr77u"',
            f'label = "{unit.label}"',
            f'zone = "{unit.zone}"',
            f'host = "{sim.host}"',
            f"port = {sim.port}",
            f"unit_id = {sim.unit_id}",
            f"poll_interval_s = {poll_s}",
        ]
    return "\n".join(lines) + "\n"


def _line(device: str, values: dict[str, object]) -> str:
    def temp(key: str) -> str:
        v = values.get(key)
        return f"{v:6.1f}" if isinstance(v, int | float) else "     -"

    flags = [
        name
        for key, name in (
            ("compressor_on", "COMPRESSOR"),
            ("defrost_active", "DEFROST"),
            ("alarm", "ALARM"),
        )
        if values.get(key)
    ]
    return (
        f"  {device:<20} air {temp('room_temp')} °C  evap {temp('evaporator_temp')} °C  "
        f"set {temp('setpoint')} °C  {' '.join(flags)}"
    )


async def _print_live(agent_bus_sub: object, devices: int) -> None:
    from edge_agent.channel import Channel

    channel: Channel[Reading] = agent_bus_sub  # type: ignore[assignment]
    latest: dict[str, dict[str, object]] = {}
    last_print = 0.0
    while True:
        batch = await channel.get_batch(10_000)
        for r in batch:
            latest.setdefault(r.device_id, {})[r.point] = r.value
        now = time.monotonic()
        if len(latest) >= devices and now - last_print >= 1.0:
            last_print = now
            print(time.strftime("%H:%M:%S"), "live readings:")
            for dev in sorted(latest):
                print(_line(dev, latest[dev]))
            sys.stdout.flush()


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


async def run_demo(
    directory: str, *, devices: int = 4, duration: float | None = None, speed: float = 60.0
) -> int:
    from edge_agent.agent import Agent
    from edge_agent.config.loader import load_config
    from firmware_profiles.loader import load_library

    os.makedirs(directory, exist_ok=True)
    clock = ScaledClock(speed)
    sims = await start_demo_fleet(devices, clock)
    cfg_path = os.path.join(directory, "venue.toml")
    await asyncio.to_thread(_write_text, cfg_path, demo_config(sims, poll_s=2.0))
    cfg = load_config(cfg_path)
    agent = Agent(cfg, load_library())
    live = agent.bus.subscribe("demo-view", (Reading,), 10_000, Overflow.DROP_OLDEST)
    agent.supervisor  # noqa: B018 - created in Agent; printer joins its services below
    printer = Service("demo-view", lambda: _print_live(live.channel, devices))
    agent._extra.append(printer)
    print(
        f"Simulated venue: {devices} Dixell XR77U-style controllers on loopback "
        f"(equipment time x{speed:g}). Config: {cfg_path}"
    )
    print("Ctrl-C to stop.\n")
    stopper: asyncio.Task[None] | None = None
    if duration is not None:

        async def stop_later() -> None:
            await asyncio.sleep(duration)
            agent.stop()

        stopper = asyncio.create_task(stop_later(), name="demo-duration")
    try:
        rc = await agent.run()
    finally:
        if stopper is not None:
            stopper.cancel()
        for sim in sims:
            await sim.stop()
    print(f"\nStore kept at {cfg.storage.path}. Look at it with:")
    print(f"  .venv/bin/beerflow-edge status --config {cfg_path}")
    print(f"  .venv/bin/beerflow-edge readings --config {cfg_path} --device {_unit(0).id}")
    return rc


async def run_simulators(count: int, *, base_port: int, seed: int, speed: float) -> int:
    clock = ScaledClock(speed)
    sims = []
    for i in range(count):
        sim = FridgeSimulator(
            FridgeModel(clock.time(), seed=seed + i), clock, port=base_port + i if base_port else 0
        )
        await sim.start()
        sims.append(sim)
    print("READY", " ".join(str(s.port) for s in sims), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sim in sims:
        with contextlib.suppress(Exception):
            await sim.stop()
    return 0
