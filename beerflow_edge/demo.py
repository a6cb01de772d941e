"""`make demo`: a simulated venue (fridges and a freezer speaking real Modbus TCP on loopback),
the agent polling them into a real store, and a live view printed until Ctrl-C or --duration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from edge_agent.bus import Overflow
from edge_agent.clock import Clock, SystemClock
from edge_agent.config.model import VenueConfig
from edge_agent.demo_view import DemoView, Status, outbox_rows
from edge_agent.messages import Event
from edge_agent.staff import hash_pin
from edge_agent.supervisor import Service
from firmware_profiles.loader import ProfileLibrary
from simulators.demo_part import DemoPart
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.fridge_model import FridgeModel, FridgeParams


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


DEMO_STAFF = ("1", "Demo Chef", "1234")
# The bar fridge's compressor fails this long into the demo, so the alarm, acknowledgement
# and corrective-action workflow can be tried in the terminal within a few minutes.
FAULT_AFTER_S = 60.0


def demo_rules() -> str:
    """HACCP units for the demo's fridges; short delays and no start-up hold, for a demo."""
    units = [
        ("walk-in-cold-room", "Walk-in cold room", "cold_hold", ""),
        ("reach-in-fridge", "Reach-in fridge (line)", "cold_hold", ""),
        ("freezer", "Chest freezer", "freezer", ""),
        ("bar-fridge", "Back-bar bottle fridge", "cold_hold", "delay_s = 120\n"),
    ]
    out = [
        "# Written by `beerflow-edge demo`. Real venues keep the presets' delays and the",
        "# 90-minute start-up hold; this demo shortens them so an alarm shows within minutes.",
        "[haccp]",
        'region = "uk"',
    ]
    for unit_id, label, kind, extra in units:
        out += [
            "",
            "[[haccp.units]]",
            f'id = "{unit_id}"',
            f'label = "{label}"',
            f'kind = "{kind}"',
            f'device = "{unit_id}"',
            'point = "room_temp"',
            'defrost_point = "defrost_active"',
            "power_up_s = 0",
            "record_every_s = 300",
        ]
        if extra:
            out.append(extra.rstrip("\n"))
    return "\n".join(out) + "\n"


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
        "",
        "[[staff]]",
        f'id = "{DEMO_STAFF[0]}"',
        f'name = "{DEMO_STAFF[1]}"',
        'role = "manager"',
        f'pin_hash = "{hash_pin(DEMO_STAFF[2])}"',
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


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


DEMO_PARTS = (
    ("Modbus", "simulators.modbus.demo"),
    ("OPC-UA", "simulators.opcua.combi_server"),
    ("serial", "simulators.serial"),
    ("MQTT", "simulators.mqtt.demo"),
    ("BLE", "simulators.ble"),
)


async def _start_parts(directory: str, clock: ScaledClock) -> list[DemoPart]:
    """Each transport's simulated devices; a transport that cannot start here is skipped."""
    import importlib

    parts = []
    for name, module_name in DEMO_PARTS:
        try:
            module = importlib.import_module(module_name)
            demo_part = module.demo_part
        except (ImportError, AttributeError):
            continue
        # Devices that stamp their own messages (MQTT) must use wall time: the box rightly
        # refuses device times ahead of its own clock. Equipment physics may run faster.
        part_clock: Clock = SystemClock() if name == "MQTT" else clock
        try:
            part = await demo_part(directory, part_clock)
        except Exception as exc:  # a demo keeps going without the transport that failed
            print(f"  ({name} simulators skipped: {exc})")
            continue
        parts.append(part)
    return parts


def device_counts(cfg: VenueConfig, library: ProfileLibrary) -> str:
    """'20 devices: 4 Modbus, 3 OPC-UA, …', counted from the config the agent runs."""
    names = {"modbus": "Modbus", "opcua": "OPC-UA", "ble": "BLE", "mqtt": "MQTT"}
    counts: dict[str, int] = {}
    for d in cfg.devices:
        profile = library.get(d.profile)
        transport = str(profile.transport) if profile else "?"
        label = names.get(transport, transport)
        counts[label] = counts.get(label, 0) + 1
    parts = ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{len(cfg.devices)} devices: {parts}"


def _demo_status(agent: Any, synced: bool) -> Status:
    up = sum(1 for h in agent.health.all() if h.connected)
    return Status(
        up,
        len(agent.config.devices),
        agent.writer.stats.readings,
        0,  # the view counts alarms from the events it sees
        outbox_rows(agent.config.storage.path) if synced else None,
    )


async def run_demo(
    directory: str,
    *,
    devices: int = 4,
    duration: float | None = None,
    speed: float = 60.0,
    cloud: bool = True,
) -> int:
    from beerflow_edge.agent import Agent
    from beerflow_edge.demo_cloud import start_cloud_and_enrol
    from edge_agent.config.loader import load_config
    from firmware_profiles.loader import load_library

    os.makedirs(directory, exist_ok=True)
    clock = ScaledClock(speed)
    sims = await start_demo_fleet(devices, clock)
    parts = await _start_parts(directory, clock)
    cfg_path = os.path.join(directory, "venue.toml")
    text = demo_config(sims, poll_s=2.0) + "".join(p.config_toml for p in parts)
    await asyncio.to_thread(_write_text, cfg_path, text)
    await asyncio.to_thread(_write_text, os.path.join(directory, "rules.toml"), demo_rules())
    cfg = load_config(cfg_path)
    demo_cloud = None
    if cloud:
        demo_cloud = await start_cloud_and_enrol(
            directory, cfg.storage.path, "demo-pubco", cfg.venue.id
        )
    library = load_library()
    agent = Agent(cfg, library)
    events = agent.bus.subscribe("demo-view", (Event,), 10_000, Overflow.DROP_OLDEST)
    view = DemoView(lambda: _demo_status(agent, demo_cloud is not None))
    agent._extra.append(Service("demo-view", lambda: view.run(events.channel)))
    print(f"Simulated venue: {device_counts(cfg, library)} (equipment time x{speed:g}).")
    print(f"  + {devices} Dixell XR77U-style controllers (Modbus TCP on loopback)")
    for p in parts:
        print(f"  + {p.description}")
    if demo_cloud is not None:
        token = os.path.join(demo_cloud.data, "admin.token")
        print(f"  + local cloud at {demo_cloud.url}; this box is enrolled and syncing. Open it:")
        print(f'      curl -H "Authorization: Bearer $(cat {token})" {demo_cloud.url}/v1/fleet')
        print(
            f'      curl -H "Authorization: Bearer $(cat {token})" '
            f'"{demo_cloud.url}/v1/venues/{cfg.venue.id}/events?stream=alarms"'
        )
        print(f"      (every endpoint: {demo_cloud.url}/openapi.json)")
    print(
        f"  + HACCP units for the fridges and freezer (rules.toml); the bar fridge's "
        f"compressor fails after {FAULT_AFTER_S:.0f} s"
    )
    print(
        f"Kitchen terminal: beerflow-edge tui --config {cfg_path}  "
        f"(staff id {DEMO_STAFF[0]}, PIN {DEMO_STAFF[2]})"
    )
    print(f"Config: {cfg_path}. Ctrl-C to stop.")
    print("Events appear below as they happen; the last line is the venue's status.\n")

    async def fail_bar_fridge() -> None:
        await asyncio.sleep(FAULT_AFTER_S)
        if len(sims) > 3:
            sims[3].model.compressor_dead = True

    fault = asyncio.create_task(fail_bar_fridge(), name="demo-fault")
    stopper: asyncio.Task[None] | None = None
    if duration is not None:

        async def stop_later() -> None:
            await asyncio.sleep(duration)
            agent.stop()

        stopper = asyncio.create_task(stop_later(), name="demo-duration")
    try:
        rc = await agent.run()
    finally:
        fault.cancel()
        if stopper is not None:
            stopper.cancel()
        for sim in sims:
            await sim.stop()
        for p in parts:
            with contextlib.suppress(Exception):
                await p.stop()
        if demo_cloud is not None:
            await demo_cloud.stop()
    print(f"\n\nStore kept at {cfg.storage.path}. Look at it with:")
    print(f"  .venv/bin/beerflow-edge status --config {cfg_path}")
    print(f"  .venv/bin/beerflow-edge readings --config {cfg_path} --device {_unit(0).id}")
    print(f"  .venv/bin/beerflow-edge tui --config {cfg_path}   (while the demo runs)")
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
