"""Nothing stops silently: a service that crashes (an exception injected into a codec) or
wedges (a loop that stops making progress while its broker delivers) shows as degraded on
/health, /metrics and `status`, raises an event and is restarted with backoff. Real Mosquitto,
the real agent; time is a ManualClock (no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from beerflow_edge import cli
from beerflow_edge.agent import Agent
from drivers.mqtt.service import BrokerService
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.store.reader import StoreReader
from firmware_profiles.loader import load_library
from simulators.mqtt.devices import GenericSensorSim
from tests.conftest import MINIMAL_VENUE
from tests.helpers import api_get, until
from tests.peers import mqtt as peers

mosquitto = peers.mosquitto  # fixture

POISON = b'{"temperature": 1, "poison": true}'


async def start(write_config, mosquitto, clock: ManualClock, address: str):  # type: ignore[no-untyped-def]
    text = MINIMAL_VENUE + (
        f'\n[[brokers]]\nid = "local"\nport = {mosquitto.port}\n'
        f'client_id = "live-{address}"\nkeepalive_s = 5\n'
        f'\n[[devices]]\nid = "board"\nprofile = "generic-json-sensor"\n'
        f'broker = "local"\naddress = "{address}"\n'
    )
    path = write_config(text)
    cfg = load_config(path)
    agent = Agent(cfg, load_library(), clock=clock)
    task = asyncio.create_task(agent.run(install_signals=False))
    await until(lambda: agent.api_ready.is_set(), what="API up")
    service: BrokerService = agent.drivers.shared["mqtt"]["local"]
    await until(lambda: service.link.connected, what="broker connected")
    return path, cfg, agent, task, service


async def stop(agent: Agent, task: asyncio.Task[Any]) -> None:
    agent.stop()
    await asyncio.wait_for(task, 30)


async def restart_after_backoff(agent: Agent, name: str, clock: ManualClock) -> None:
    """Advance the clock through the supervisor's backoff until the service runs again."""
    st = agent.supervisor.states[name]
    for _ in range(30):
        if st.state == "running":
            return
        await clock.advance(1.0)
    raise AssertionError(f"{name} did not restart: {st}")


def status_text(path: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["status", "--config", path])
    return out.getvalue()


def events(db: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]
    finally:
        conn.close()


async def test_a_codec_that_raises_degrades_raises_an_event_and_restarts(
    write_config, mosquitto, clock
):
    sim = GenericSensorSim(mosquitto.host, mosquitto.port, "crashy", clock, seed=1)
    path, cfg, agent, task, service = await start(write_config, mosquitto, clock, "crashy")
    await sim.start()
    try:
        dev = service.devices[0]
        real: Callable[..., Any] = dev.codec.decode

        def decode(topic: str, payload: bytes, now: float) -> Any:
            if payload == POISON:
                raise RuntimeError("injected codec bug")
            return real(topic, payload, now)

        dev.codec.decode = decode  # type: ignore[method-assign]
        await sim.send(sim.data_topic, json.dumps({"temperature": 3.5}))
        await until(lambda: dev.health.connected, what="device connected")
        assert agent.health_report()["status"] == "ok"

        await sim.send(sim.data_topic, POISON)
        name = "mqtt:local"
        await until(lambda: agent.supervisor.states[name].state == "restarting", what="crash")
        report = agent.health_report()
        assert report["status"] == "degraded" and report["degraded"] == [name]
        assert "injected codec bug" in report["services"][name]["last_error"]
        assert report["devices"]["connected"] == 0  # not "every device connected"
        _, metrics = await api_get(cfg.api.socket, "/metrics")
        assert f'beerflow_service_up{{service="{name}"}} 0.0' in metrics
        text = await asyncio.to_thread(status_text, path)
        assert f"DEGRADED service {name}: restarting" in text and "injected codec bug" in text

        await restart_after_backoff(agent, name, clock)
        # The broker sends the unacknowledged poison again: quarantined, not a crash loop.
        await until(lambda: dev.health.malformed == 1, what="poison counted as malformed")
        await sim.send(sim.data_topic, json.dumps({"temperature": 4.5}))
        await until(lambda: service.link.unacknowledged == 0 and dev.health.connected, what="on")
        st = agent.supervisor.states[name]
        assert st.state == "running" and st.crashes == 1 and st.restarts == 1
        assert agent.health_report()["status"] == "ok"
        _, metrics = await api_get(cfg.api.socket, "/metrics")
        assert f'beerflow_service_restarts{{service="{name}"}} 1.0' in metrics
        await agent.writer.flush()
        with StoreReader(cfg.storage.path) as r:
            assert {x.point: x.value for x in r.latest("board")}["temperature"] == 4.5
        kinds = events(cfg.storage.path)
        assert "service.crashed" in kinds and "service.restarted" in kinds
    finally:
        await sim.stop()
        await stop(agent, task)


async def test_a_wedged_loop_is_found_by_the_watchdog_and_restarted(write_config, mosquitto, clock):
    sim = GenericSensorSim(mosquitto.host, mosquitto.port, "wedgy", clock, seed=2)
    _path, cfg, agent, task, service = await start(write_config, mosquitto, clock, "wedgy")
    await sim.start()
    try:
        link = service.link
        real: Callable[[Any], Awaitable[Any]] = link._on_batch
        wedge = asyncio.Event()  # never set: the first batch after this hangs forever
        calls = {"n": 0}

        async def hang_once(batch: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                await wedge.wait()
            return await real(batch)

        await until(lambda: link.received == link.handled, what="retained status handled")
        link._on_batch = hang_once  # type: ignore[method-assign]
        await sim.send(sim.data_topic, json.dumps({"temperature": 2.5}))
        await until(lambda: link.received > link.handled, what="a message waits")
        name = "mqtt:local"
        # Busy and no progress: degraded only once the stall time (30 s) has passed on the
        # clock, counted from the watchdog's first look (every 5 s).
        st = agent.supervisor.states[name]
        await clock.advance(30)
        assert st.state == "running" and st.stalls == 0
        await clock.advance(5)
        await until(lambda: st.state == "restarting", what="stall")
        assert agent.health_report()["degraded"] == [name]
        assert agent.supervisor.states[name].stalls == 1

        await restart_after_backoff(agent, name, clock)
        # The message the wedged loop held was never acknowledged: it comes again and is stored.
        await until(lambda: calls["n"] >= 2 and link.unacknowledged == 0, what="redelivered")
        await agent.writer.flush()
        with StoreReader(cfg.storage.path) as r:
            assert {x.point: x.value for x in r.latest("board")}["temperature"] == 2.5
        assert "service.stalled" in events(cfg.storage.path)
        assert agent.health_report()["status"] == "ok"
    finally:
        await sim.stop()
        await stop(agent, task)
