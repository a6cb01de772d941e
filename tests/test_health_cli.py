"""`beerflow-edge health`, the package's upgrade check: 0 once the running agent reports ok,
1 when no agent answers within --wait."""

from __future__ import annotations

import asyncio

from beerflow_edge.agent import Agent
from beerflow_edge.cli import main
from edge_agent.config.loader import load_config
from firmware_profiles.loader import load_library
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until


async def test_health_waits_for_a_running_agent(write_config, capsys):
    path = write_config(MINIMAL_VENUE)
    assert await asyncio.to_thread(main, ["health", "-c", path, "--wait", "0.2"]) == 1
    assert "unhealthy: agent API not answering" in capsys.readouterr().err
    agent = Agent(load_config(path), load_library())
    task = asyncio.create_task(agent.run(install_signals=False))
    try:
        await until(lambda: agent.api_ready.is_set(), what="API up")
        assert await asyncio.to_thread(main, ["health", "-c", path, "--wait", "10"]) == 0
        assert capsys.readouterr().out.startswith("ok: agent ")
    finally:
        agent.stop()
        assert await task == 0
