from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import settings

from edge_agent.clock import ManualClock
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.fridge_model import FridgeModel

# Hypothesis' per-example deadline is a wall-clock assertion; on a loaded two-core machine it
# fails tests that are correct. Property tests check behaviour, not speed (bench/ does that).
settings.register_profile("beerflow", deadline=None)
settings.load_profile("beerflow")

MINIMAL_VENUE = """\
[venue]
id = "the-crown"
name = "The Crown"
timezone = "Europe/London"
"""


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], str]:
    """Write a venue config (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "venue.toml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_750_000_000.0)


@pytest.fixture
async def fridge(clock: ManualClock) -> AsyncIterator[FridgeSimulator]:
    sim = FridgeSimulator(FridgeModel(clock.time(), seed=3), clock)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def device_block(
    dev_id: str, port: int, *, poll: float = 5.0, profile: str = "dixell-xr77u"
) -> str:
    return (
        f'\n[[devices]]\nid = "{dev_id}"\nprofile = "{profile}"\nhost = "127.0.0.1"\n'
        f"port = {port}\npoll_interval_s = {poll}\n"
    )
