"""The OPC-UA driver against the combi steamer simulator on a real asyncua server (loopback):
readings, data-change notifications, polling fallback, commands, reconnect after a restart.
Waits inside the driver run on an injected ManualClock; only the server's own replies are real
time (bounded with `until`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import stat

import pytest

from beerflow_edge.agent import Agent
from drivers.opcua.coordinator import BACKOFF_CAP_S, OpcuaCoordinator
from edge_agent.bus import Bus
from edge_agent.config.loader import load_config
from edge_agent.config.opcua_address import parse_address
from edge_agent.health import HealthRegistry
from edge_agent.messages import Command
from edge_agent.store.reader import StoreReader
from firmware_profiles.loader import load_library
from simulators.opcua.combi_model import Mode
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until
from tests.peers import opcua as peers
from tests.peers.opcua import drain, reading_tap

pytestmark = pytest.mark.asyncio(loop_scope="module")

# the shared simulator (module-scoped) and per-test fresh ovens
combi_server = peers.combi_server
combi = peers.combi

PROFILE = load_library().get("opc30200-combi-steamer")


@contextlib.asynccontextmanager
async def running(server, bus, name="Combi_1", **kw):
    assert PROFILE is not None and PROFILE.opcua is not None
    health = HealthRegistry().register("combi", "opcua")
    coord = OpcuaCoordinator(
        "combi",
        parse_address(f"{server.url}#{name}"),
        kw.pop("security", "none"),
        PROFILE.opcua,
        bus,
        server.clock,
        health,
        rng=random.Random(1),
        **kw,
    )
    task = asyncio.create_task(coord.run())
    try:
        yield coord
    finally:
        task.cancel()
        # must stop promptly even if cancelled in the middle of an asyncua request
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, "coordinator did not stop when cancelled"


async def test_agent_stores_readings_and_runs_commands(combi, write_config):
    text = MINIMAL_VENUE + (
        f'\n[[devices]]\nid = "combi-1"\nprofile = "opc30200-combi-steamer"\n'
        f'address = "{combi.url}#Combi_1"\nsecurity = "sign_and_encrypt"\n'
    )
    cfg = load_config(write_config(text))
    agent = Agent(cfg, load_library(), clock=combi.clock)
    task = asyncio.create_task(agent.run(install_signals=False))
    try:
        await until(lambda: agent.api_ready.is_set(), what="API up")
        health = agent.health.get("combi-1")
        await until(lambda: health is not None and health.connected, 10, "secure session")
        # the box made its own certificate next to the store, key readable by the owner only
        pki = os.path.join(os.path.dirname(os.path.abspath(cfg.storage.path)), "opcua-pki")
        assert stat.S_IMODE(os.stat(os.path.join(pki, "client-key.pem")).st_mode) == 0o600
        await agent.writer.flush()
        with StoreReader(cfg.storage.path) as r:
            latest_ = {x.point: x.value for x in r.latest("combi-1")}
        assert latest_["mode"] == "standby" and latest_["door_open"] in (False, 0)
        assert latest_["chamber_temp"] == pytest.approx(24.0)
        # a command from the command bus reaches the oven, and its outcome is on record
        cmd = Command("c-42", "combi-1", "set_temperature", {"value": 175.0}, "ui", 0.0, 2e9)
        await agent.bus.publish(cmd)
        oven = combi.ovens["Combi_1"]
        await until(lambda: oven.state.set_temperature == 175.0, 10, "write applied")

        def recorded():
            with StoreReader(cfg.storage.path) as r:
                return [e.data for e in r.events(kind="command.result")]

        for _ in range(50):
            await agent.writer.flush()
            if recorded():
                break
            await asyncio.sleep(0.05)
        (result,) = recorded()
        assert result["ok"] and result["value"] == 175.0 and result["origin"] == "ui"
    finally:
        agent.stop()
        assert await task == 0


def latest(readings):
    return {r.point: r.value for r in readings}


def command(name, **args):
    return Command("c1", "combi", name, args, "test", 0.0, 2e9)


async def test_readings_end_to_end(combi):
    bus = Bus()
    tap = reading_tap(bus)
    got = []
    async with running(combi, bus) as coord:
        await until(lambda: coord.mode == "subscription", what="subscribed")
        got += drain(tap)
        values = latest(got)
        assert values["mode"] == "standby"
        assert values["chamber_temp"] == pytest.approx(24.0)
        assert values["door_open"] is False
        assert values["time_remaining"] == 0
        assert values["program"] == ""
        assert values["set_temperature"] == pytest.approx(160.0)
        units = {r.point: r.unit for r in got}
        assert units["chamber_temp"] == "°C" and units["time_remaining"] == "s"
        assert all(r.device_id == "combi" and r.ts == combi.clock.time() for r in got)
        assert coord.health.connected and coord.health.malformed == 0


async def test_data_change_notification_reaches_the_bus(combi):
    bus = Bus()
    tap = reading_tap(bus)
    async with running(combi, bus) as coord:
        await until(lambda: coord.mode == "subscription", what="subscribed")
        drain(tap)
        combi.ovens["Combi_1"].open_door(30)
        await combi.clock.advance(1)  # one simulator tick pushes the change into the node
        seen = []

        def door_opened():
            seen.extend(drain(tap))
            return any(r.point == "door_open" and r.value is True for r in seen)

        await until(door_opened, 5, "door notification")
        # one second of clock, far below the refresh interval: no read ran, a notification did
        assert combi.clock.time() - 1_750_000_000.0 == 1.0 < PROFILE.opcua.refresh_interval_s


async def test_polling_fallback_when_subscriptions_are_refused(combi):
    combi.refuse_subscriptions()
    bus = Bus()
    tap = reading_tap(bus)
    async with running(combi, bus) as coord:
        await until(lambda: coord.mode == "polling", what="polling mode")
        drain(tap)
        combi.ovens["Combi_1"].start_program("Bread", Mode.HOT_AIR, 200.0, 1200, 0.0)
        await combi.clock.advance(PROFILE.opcua.polling_interval_s)
        seen = []

        def polled():
            seen.extend(drain(tap))
            return any(r.point == "mode" for r in seen)

        await until(polled, 5, "a poll")
        values = latest(seen)
        assert values["mode"] == "preheat" and values["program"] == "Bread"
        assert values["chamber_temp"] > 24.0


async def test_write_with_range_check_and_readback(combi):
    bus = Bus()
    async with running(combi, bus) as coord:
        await until(lambda: coord.mode == "subscription", what="subscribed")
        res = await coord.execute(command("set_temperature", value=185.0))
        assert res.ok and res.value == pytest.approx(185.0)
        assert combi.ovens["Combi_1"].state.set_temperature == 185.0

        res = await coord.execute(command("set_temperature", value=400.0))
        assert not res.ok and "above the maximum 300" in res.error
        res = await coord.execute(command("set_temperature", value="hot"))
        assert not res.ok and "number" in res.error
        res = await coord.execute(command("self_destruct"))
        assert not res.ok and "unknown command" in res.error
        assert combi.ovens["Combi_1"].state.set_temperature == 185.0


async def test_method_call_starts_a_program(combi):
    bus = Bus()
    tap = reading_tap(bus)
    async with running(combi, bus) as coord:
        await until(lambda: coord.mode == "subscription", what="subscribed")
        args = {
            "program": "Roast chicken",
            "mode": 5,
            "temperature": 180.0,
            "duration_s": 3600,
            "core_target": 74.0,
        }
        res = await coord.execute(command("start_program", **args))
        assert res.ok, res.error
        oven = combi.ovens["Combi_1"]
        assert oven.state.mode == Mode.PREHEAT and oven.state.program == "Roast chicken"
        bad = await coord.execute(command("start_program", **{**args, "duration_s": 10}))
        assert not bad.ok and "below the minimum 60" in bad.error
        missing = await coord.execute(command("start_program", program="x"))
        assert not missing.ok and "missing argument" in missing.error
        # Preheat, then cooking with the remaining time running down, seen through polls.
        for _ in range(12):  # about 8 minutes of preheat to 180 °C
            await combi.clock.advance(PROFILE.opcua.refresh_interval_s)
        seen = []

        def cooking():
            seen.extend(drain(tap))
            return latest(seen).get("mode") == "combi_steaming"

        await until(cooking, 5, "cooking mode")
        values = latest(seen)
        assert 0 < values["time_remaining"] < 3600
        assert values["core_temp"] > 9.0


async def test_server_restart_reconnects_and_resubscribes(combi, caplog):
    bus = Bus()
    tap = reading_tap(bus)
    async with running(combi, bus) as coord:
        await until(lambda: coord.mode == "subscription", what="subscribed")
        assert coord.connects == 1
        await combi.stop()
        await until(lambda: not coord.health.connected, 10, "outage noticed")
        assert coord.mode == "disconnected"
        offline = await coord.execute(command("set_temperature", value=180.0))
        assert not offline.ok and "offline" in offline.error

        await combi.start()  # a fresh server on the same port (same certificate)
        drain(tap)
        # the backoff never waits longer than its cap: advancing by the cap must reconnect
        for _ in range(4):
            await combi.clock.advance(BACKOFF_CAP_S)
            if coord.mode == "subscription":
                break
            await until(lambda: coord.mode == "subscription" or combi.clock.sleepers > 1, 5)
        await until(lambda: coord.mode == "subscription", 10, "re-subscribed")
        assert coord.connects == 2 and coord.health.connected
        # notifications flow on the new subscription
        combi.ovens["Combi_1"].open_door(20)
        await combi.clock.advance(1)
        seen = []

        def door_opened():
            seen.extend(drain(tap))
            return any(r.point == "door_open" and r.value is True for r in seen)

        await until(door_opened, 5, "door notification after restart")
    offline_logs = [r for r in caplog.records if "offline" in r.getMessage()]
    assert len(offline_logs) <= 1
