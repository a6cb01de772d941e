"""A real agent for the terminal's tests: the Agent in-process on a ManualClock, polling real
Modbus fridge simulators, with the rules service (rules.toml next to the venue config: the three
fridges are HACCP units) and staff with hashed PINs in the venue config."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from beerflow_edge.agent import Agent
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.config.model import VenueConfig
from edge_agent.staff import hash_pin
from firmware_profiles.loader import load_library
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.fridge_model import FridgeModel, FridgeParams
from tests.helpers import until

UNITS = (
    ("walk-in", "Walk-in cold room", "kitchen", 3.0),
    ("freezer", "Chest freezer", "kitchen", -20.0),
    ("bar-fridge", "Bar fridge", "bar", 4.0),
)

# Staff ID, name, role, PIN. The PINs exist only here; the venue config holds their hashes.
STAFF = (("12", "Sam Okafor", "staff", "2468"), ("jo", "Jo Bianchi", "manager", "1357"))
# Small scrypt cost: the tests exercise the flow, tests/test_staff.py the KDF's defaults.
_HASHES = {sid: hash_pin(pin, n=2**10) for sid, _, _, pin in STAFF}

# The walk-in's limit is tightened so a dead compressor alarms within half an hour of model time;
# the fridge cycles between 3 and 5 °C, so 6 °C never trips in normal running.
RULES_TOML = """\
[haccp]
region = "uk"

[[haccp.units]]
id = "walk-in"
label = "Walk-in cold room"
kind = "cold_hold"
device = "walk-in"
max_c = 6.0
delay_s = 600
power_up_s = 0

[[haccp.units]]
id = "freezer"
label = "Chest freezer"
kind = "freezer"
device = "freezer"
power_up_s = 0

[[haccp.units]]
id = "bar-fridge"
label = "Bar fridge"
kind = "cold_hold"
device = "bar-fridge"
power_up_s = 0
"""


def staff_toml() -> str:
    return "".join(
        f'\n[[staff]]\nid = "{sid}"\nname = "{name}"\nrole = "{role}"\n'
        f'pin_hash = "{_HASHES[sid]}"\n'
        for sid, name, role, _ in STAFF
    )


@dataclass
class RunningAgent:
    config: VenueConfig
    agent: Agent
    task: asyncio.Task[int]
    clock: ManualClock
    sims: list[FridgeSimulator] = field(default_factory=list)

    @property
    def socket(self) -> str:
        return self.config.api.socket

    async def stop(self) -> None:
        self.agent.stop()
        await self.task


def venue_toml(sims: list[FridgeSimulator], venue_extra: str = "") -> str:
    text = '[venue]\nid = "the-crown"\nname = "The Crown"\ntimezone = "Europe/London"\n'
    text += venue_extra
    text += staff_toml()
    for (dev_id, label, zone, _), sim in zip(UNITS, sims, strict=False):
        text += (
            f'\n[[devices]]\nid = "{dev_id}"\nprofile = "dixell-xr77u"\nlabel = "{label}"\n'
            f'zone = "{zone}"\nhost = "127.0.0.1"\nport = {sim.port}\npoll_interval_s = 60\n'
        )
    return text


async def start_fridges(clock: ManualClock, count: int = 3) -> list[FridgeSimulator]:
    sims = []
    for i, (_, _, _, setpoint) in enumerate(UNITS[:count]):
        params = FridgeParams(setpoint=setpoint)
        if setpoint < -10:
            params.evaporator_floor = -30.0
            params.defrost_end_evaporator = 5.0
        sim = FridgeSimulator(FridgeModel(clock.time(), seed=11 + i, params=params), clock)
        await sim.start()
        sims.append(sim)
    return sims


async def start_agent(config_path: str, clock: ManualClock) -> RunningAgent:
    cfg = load_config(config_path)
    agent = Agent(cfg, load_library(), clock=clock)
    task = asyncio.create_task(agent.run(install_signals=False))
    await until(lambda: agent.api_ready.is_set(), what="API up")
    return RunningAgent(cfg, agent, task, clock)


async def run_for(running: RunningAgent, hours: float) -> None:
    """Move equipment time forward a minute at a time, letting every device poll once."""
    devices = [running.agent.health.get(d.id) for d in running.config.devices]
    await until(lambda: all(h is not None and h.polls >= 1 for h in devices), what="first poll")
    for _ in range(int(hours * 60)):
        before = [h.polls for h in devices if h is not None]
        await running.clock.advance(60)
        await until(
            lambda b=before: all(
                h is not None and h.polls > p for h, p in zip(devices, b, strict=True)
            ),
            what="poll after advance",
        )
    await running.agent.writer.flush()


async def run_until(
    running: RunningAgent, cond: Callable[[], Awaitable[bool]], max_minutes: int, what: str
) -> int:
    """Advance a minute at a time until `cond` holds; the minutes it took."""
    for minute in range(max_minutes):
        if await cond():
            return minute
        await run_for(running, 1 / 60)
    raise AssertionError(f"{what} did not happen within {max_minutes} min of model time")


@pytest.fixture
async def agent(write_config, clock):  # type: ignore[no-untyped-def]
    """A real agent with the rules service and three fridges, an hour into its day."""
    sims = await start_fridges(clock)
    write_config(RULES_TOML, "rules.toml")
    running = await start_agent(write_config(venue_toml(sims)), clock)
    running.sims = sims
    try:
        await run_for(running, hours=1)
        yield running
    finally:
        if not running.task.done():
            await running.stop()
        for sim in sims:
            await sim.stop()
