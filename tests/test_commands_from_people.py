"""Commands from people: the PIN-protected local API route and `beerflow-edge command`, end to
end through the agent to the combi steamer simulator on a real asyncua server; text and
enumerated arguments validated by the profile; every outcome on record with who sent it."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest
import pytest_asyncio

from beerflow_edge.agent import Agent
from beerflow_edge.cli import main, parse_assignment
from edge_agent.config.loader import load_config
from edge_agent.staff import hash_pin
from edge_agent.store.reader import StoreReader
from firmware_profiles.loader import load_library
from simulators.opcua.combi_model import Mode
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until
from tests.peers import opcua as peers

pytestmark = pytest.mark.asyncio(loop_scope="module")
combi_server = peers.combi_server
combi = peers.combi

STAFF = f"""
[[staff]]
id = "ana"
name = "Ana Silva"
pin_hash = "{hash_pin("2468")}"
"""
ANA = {"staff_id": "ana", "pin": "2468"}
CONFIG: dict[Agent, str] = {}  # the config file each running agent was loaded from
PROGRAM = {
    "program": "Roast chicken",
    "mode": "combi_steaming",
    "temperature": 160.0,
    "duration_s": 3600,
    "core_target": 74.0,
}


async def post(sock: str, path: str, body: object) -> tuple[int, dict | str]:
    conn = aiohttp.UnixConnector(path=sock)
    async with (
        aiohttp.ClientSession(connector=conn) as s,
        s.post(f"http://agent{path}", json=body) as r,
    ):
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.text()


@pytest_asyncio.fixture(loop_scope="module")
async def agent(combi, write_config):
    text = (
        MINIMAL_VENUE
        + STAFF
        + (
            f'\n[[devices]]\nid = "combi-1"\nprofile = "opc30200-combi-steamer"\n'
            f'address = "{combi.url}#Combi_1"\n'
        )
    )
    path = write_config(text)
    cfg = load_config(path)
    a = Agent(cfg, load_library(), clock=combi.clock)
    CONFIG[a] = path
    task = asyncio.create_task(a.run(install_signals=False))
    try:
        await until(lambda: a.api_ready.is_set(), what="API up")
        health = a.health.get("combi-1")
        await until(lambda: health is not None and health.connected, 10, "session")
        yield a
    finally:
        a.stop()
        assert await task == 0
        CONFIG.pop(a, None)


async def recorded(agent: Agent) -> list[dict]:
    await agent.writer.flush()
    with StoreReader(agent.config.storage.path) as r:
        return [e.data for e in r.events(kind="command.result")]


async def test_a_program_is_started_by_name_and_recorded_with_who(agent, combi):
    sock = agent.config.api.socket
    status, reply = await post(
        sock, "/devices/combi-1/commands", {"command": "start_program", "args": PROGRAM, **ANA}
    )
    assert status == 200 and isinstance(reply, dict) and reply["ok"], reply
    oven = combi.ovens["Combi_1"]
    assert oven.state.program == "Roast chicken" and oven.state.mode == Mode.PREHEAT
    (event,) = await recorded(agent)
    assert event["origin"] == "staff:Ana Silva (ana)" and event["ok"]
    assert event["args"]["program"] == "Roast chicken" and event["args"]["mode"] == "combi_steaming"
    assert "2468" not in json.dumps(event)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (
            {"command": "start_program", "args": {**PROGRAM, "mode": "grill"}, **ANA},
            422,
            "must be one of steaming",
        ),
        (
            {"command": "start_program", "args": {**PROGRAM, "program": "a\x1bb"}, **ANA},
            422,
            "control characters",
        ),
        (
            {"command": "start_program", "args": {**PROGRAM, "program": "x" * 65}, **ANA},
            422,
            "longer than 64",
        ),
        (
            {"command": "start_program", "args": {**PROGRAM, "program": "  "}, **ANA},
            422,
            "must not be empty",
        ),
        (
            {"command": "start_program", "args": {**PROGRAM, "mode": 9}, **ANA},
            422,
            "must be one of",
        ),
        ({"command": "self_destruct", "args": {}, **ANA}, 400, "must be one of"),
        (
            {"command": "start_program", "args": {"program": {"nested": 1}}, **ANA},
            400,
            "must be text",
        ),
        ({"command": "start_program", "args": PROGRAM, "staff_id": "ana", "pin": "1111"}, 401, ""),
        ({"command": "start_program", "args": PROGRAM}, 400, "staff_id"),
    ],
)
async def test_bad_requests_change_nothing(agent, combi, body, status, says):
    got, reply = await post(agent.config.api.socket, "/devices/combi-1/commands", body)
    assert got == status, reply
    assert says in (reply["error"] if isinstance(reply, dict) else reply)
    oven = combi.ovens["Combi_1"]
    assert oven.state.program == "" and oven.state.mode == Mode.STANDBY
    events = await recorded(agent)
    assert all(not e["ok"] for e in events)  # refused ones are on record too, as failures


async def test_unknown_device_is_404(agent):
    status, _ = await post(agent.config.api.socket, "/devices/ghost/commands", {})
    assert status == 404


async def test_the_cli_sends_a_command_with_a_pin_from_stdin(agent, combi, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("2468\n"))
    argv = [
        "command",
        "-c",
        CONFIG[agent],
        "combi-1",
        "start_program",
        "program=Roast chicken",
        "mode=hot_air",
        "temperature=180",
        "duration_s=1200",
        "core_target=0",
        "--staff",
        "ana",
        "--pin-stdin",
    ]
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "combi-1: start_program done" in out
    assert combi.ovens["Combi_1"].state.program == "Roast chicken"
    monkeypatch.setattr("sys.stdin", io.StringIO("0000\n"))
    assert await asyncio.to_thread(main, [*argv[:-4], "mode=grill", *argv[-3:]]) == 2


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("program=Roast chicken", ("program", "Roast chicken")),
        ("program='Bread'", ("program", "Bread")),
        ("mode=5", ("mode", 5)),
        ("temperature=160.5", ("temperature", 160.5)),
        ("on=true", ("on", True)),
        ("name=", ("name", "")),
        ("label=1e999x", ("label", "1e999x")),
    ],
)
async def test_cli_assignments(text, pair):
    assert parse_assignment(text) == pair
