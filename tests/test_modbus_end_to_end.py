"""The first device end to end: a Dixell-style controller on a real pymodbus server, the agent
polling it through the coordinator, readings in the store, the local API and the CLI showing
them. Time is a ManualClock: polls happen when the test moves time, not when a timer fires."""

from __future__ import annotations

import asyncio
import json
import logging

from beerflow_edge.agent import Agent
from beerflow_edge.cli import main
from drivers.polling import FAILURES_BEFORE_OUTAGE
from edge_agent.config.loader import load_config
from edge_agent.store.reader import StoreReader
from firmware_profiles.loader import load_library
from simulators.modbus.dixell_server import FridgeSimulator
from tests.conftest import MINIMAL_VENUE, device_block
from tests.helpers import api_get, until


async def start_agent(write_config, ports, clock):
    text = MINIMAL_VENUE + "".join(device_block(f"fridge-{i}", p) for i, p in enumerate(ports))
    cfg = load_config(write_config(text))
    agent = Agent(cfg, load_library(), clock=clock)
    task = asyncio.create_task(agent.run(install_signals=False))
    await until(lambda: agent.api_ready.is_set(), what="API up")
    return cfg, agent, task


async def test_readings_flow_from_device_to_store_api_and_cli(write_config, fridge, clock, capsys):
    cfg, agent, task = await start_agent(write_config, [fridge.port], clock)
    health = agent.health.get("fridge-0")
    await until(lambda: health is not None and health.polls >= 1, what="first poll")
    # Three hours of equipment time, a poll every 5 s of it.
    for _ in range(3):
        await clock.advance(3600)
        polls = health.polls
        await until(lambda p=polls: health.polls > p, what="poll after advance")
    await agent.writer.flush()

    with StoreReader(cfg.storage.path) as r:
        latest = {x.point: x.value for x in r.latest("fridge-0")}
        model = fridge.model.state
        assert latest["room_temp"] == round(model.room, 1)
        assert latest["setpoint"] == 3.0
        assert latest["compressor_on"] in (0, 1)
        assert r.count_readings("fridge-0") == 8 * health.polls

    status, body = await api_get(cfg.api.socket, "/health")
    assert status == 200
    report = json.loads(body)
    assert report["devices"] == {"total": 1, "connected": 1}
    assert "device:fridge-0" in report["tasks"] and "store-writer" in report["tasks"]

    status, body = await api_get(cfg.api.socket, "/readings/latest?device=fridge-0")
    points = {x["point"]: x for x in json.loads(body)["readings"]}
    assert points["room_temp"]["unit"] == "°C"
    status, _ = await api_get(cfg.api.socket, "/readings/latest?device=nope")
    assert status == 404

    status, body = await api_get(cfg.api.socket, "/metrics")
    assert 'beerflow_device_connected{device="fridge-0"} 1.0' in body
    accepted = next(
        float(line.split()[1])
        for line in body.splitlines()
        if line.startswith("beerflow_readings_accepted_total")
    )
    assert accepted == 8 * health.polls

    # The CLI reads the same store, and asks the live agent over its socket.
    assert (
        await asyncio.to_thread(main, ["readings", "-c", cfg.source, "-d", "fridge-0", "-n", "8"])
        == 0
    )
    out = capsys.readouterr().out
    assert "room_temp" in out and "°C" in out
    assert await asyncio.to_thread(main, ["status", "-c", cfg.source]) == 0
    out = capsys.readouterr().out
    assert "1/1 devices connected" in out and "fridge-0" in out

    agent.stop()
    assert await task == 0
    with StoreReader(cfg.storage.path) as r:
        kinds = [e.kind for e in r.events()]
        assert kinds[:2] == ["agent.stopped", "agent.started"]


async def test_device_outage_is_reported_and_recovers(write_config, fridge, clock, caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    cfg, agent, task = await start_agent(write_config, [fridge.port], clock)
    health = agent.health.get("fridge-0")
    await until(lambda: health.polls >= 1, what="first poll")
    await fridge.stop()
    await clock.advance(5)
    await until(lambda: health.errors >= 1, what="poll failure")
    assert health.connected  # one failed poll is not an outage yet
    for _ in range(FAILURES_BEFORE_OUTAGE - 1):
        errors = health.errors
        await clock.advance(5)
        await until(lambda e=errors: health.errors > e, what="retry")
    assert not health.connected and health.last_error
    assert health.transient == FAILURES_BEFORE_OUTAGE - 1
    _, body = await api_get(cfg.api.socket, "/devices")
    (dev,) = json.loads(body)["devices"]
    assert dev["connected"] is False and dev["errors"] >= 1

    restarted = FridgeSimulator(fridge.model, clock, port=fridge.port)
    await restarted.start()
    try:
        polls = health.polls
        for _ in range(20):  # backoff is capped; a minute of equipment time is plenty
            await clock.advance(30)
            if health.polls > polls:
                break
            await asyncio.sleep(0.05)
        await until(lambda: health.polls > polls, what="recovery")
        assert health.connected
        offline_logs = [r for r in caplog.records if "offline" in r.getMessage()]
        assert len(offline_logs) == 1  # logged once per outage, not per failed poll
        assert any("back online" in r.getMessage() for r in caplog.records)
    finally:
        agent.stop()
        await task
        await restarted.stop()


async def test_one_dead_device_does_not_stall_another(write_config, fridge, clock):
    # a port where nothing listens: connection refused at once, every time
    from simulators.modbus.dixell_server import free_port

    _, agent, task = await start_agent(write_config, [fridge.port, free_port()], clock)
    good, dead = agent.health.get("fridge-0"), agent.health.get("fridge-1")
    await until(lambda: good.polls >= 1 and dead.errors >= 1, what="first polls")
    for _ in range(6):
        polls = good.polls
        await clock.advance(5)
        await until(lambda p=polls: good.polls > p, what="good device keeps polling")
    assert good.polls >= 7 and dead.polls == 0
    agent.stop()
    await task
