"""Staff see the venue's wall-clock times, whatever zone the terminal's machine is in."""

from __future__ import annotations

import datetime as dt

from tui.venue_time import VenueTime

# 2026-06-15 09:00 UTC: 10:00 in London (BST), 11:00 in Rome (CEST)
TS = dt.datetime(2026, 6, 15, 9, 0, tzinfo=dt.UTC).timestamp()


def test_times_are_shown_in_the_venue_zone():
    assert VenueTime("Europe/London").hhmm(TS) == "10:00"
    assert VenueTime("Europe/Rome").hhmm(TS) == "11:00"


def test_zone_can_change_and_unknown_zones_fall_back_to_local_time():
    vt = VenueTime("Europe/London")
    vt.set_zone("Europe/Rome")
    assert vt.hhmm(TS) == "11:00"
    fallback = VenueTime("Mars/Olympus")
    assert fallback.zone is None
    assert len(fallback.hhmm(TS)) == 5  # the machine's local time, still a time


async def test_agent_reports_its_zone_and_the_client_reads_it(write_config, fridge, clock):
    import asyncio

    from beerflow_edge.agent import Agent
    from edge_agent.config.loader import load_config
    from firmware_profiles.loader import load_library
    from tests.conftest import MINIMAL_VENUE
    from tests.helpers import until
    from tui.api_client import AgentClient

    cfg = load_config(write_config(MINIMAL_VENUE))
    agent = Agent(cfg, load_library(), clock=clock)
    task = asyncio.create_task(agent.run(install_signals=False))
    await until(lambda: agent.api_ready.is_set(), what="API up")
    client = AgentClient(cfg.api.socket)
    try:
        assert (await client.health()).timezone == "Europe/London"
    finally:
        await client.close()
        agent.stop()
        await task
