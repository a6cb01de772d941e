"""The rules service inside a running agent: rules.toml next to the venue config, readings on
the bus, alarms acknowledged and actioned over the local API, manual checks, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path

import aiohttp

from beerflow_edge.agent import Agent
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.messages import Reading
from edge_agent.staff import hash_pin
from firmware_profiles.loader import load_library
from rules import area as rules_area
from rules.api import RULES_SERVICE
from rules.cli import main
from tests.conftest import MINIMAL_VENUE
from tests.helpers import api_get, until

RULES = """\
[haccp]
region = "us"

[[haccp.units]]
id = "walk-in"
kind = "cold_hold"
device = "walkin"
defrost_point = "defrost_active"
power_up_s = 0

[[rules]]
id = "walkin-offline"
[rules.trigger]
type = "no_data"
device = "walkin"
minutes = 120
[[rules.actions]]
type = "notify"
message = "walk-in sensor silent"
"""


STAFF = f"""
[[staff]]
id = "12"
name = "Sam Okafor"
pin_hash = "{hash_pin("2468")}"

[[staff]]
id = "jo"
name = "Jo Bianchi"
role = "manager"
pin_hash = "{hash_pin("1357")}"
"""
SAM = {"staff_id": "12", "pin": "2468"}


async def api_post(sock: str, path: str, body: dict) -> tuple[int, str]:
    conn = aiohttp.UnixConnector(path=sock)
    async with (
        aiohttp.ClientSession(connector=conn) as s,
        s.post(f"http://agent{path}", json=body) as r,
    ):
        return r.status, await r.text()


async def test_alarm_through_the_agent_and_its_api(
    write_config, clock: ManualClock, tmp_path: Path, capsys
) -> None:
    (tmp_path / "rules.toml").write_text(RULES)
    cfg = load_config(write_config(MINIMAL_VENUE + STAFF))
    agent = Agent(cfg, load_library(), clock=clock)
    task = asyncio.create_task(agent.run(install_signals=False))
    try:
        await until(agent.api_ready.is_set, what="API up")
        svc = agent.shared(RULES_SERVICE)
        await until(svc.ready.is_set, what="rules ready")

        async def send(v: float) -> None:
            n = svc.batches
            await agent.bus.publish(Reading("walkin", "room_temp", v, clock.time(), "°C"))
            await until(lambda: svc.batches > n, what="processed")
            await svc.settled()

        await send(3.0)
        await clock.advance(600)
        await send(6.0)  # above the FDA 5 °C
        await clock.advance(1800)  # the preset's 30 min delay
        await until(lambda: svc.engine.state["walk-in-high"].active, what="alarm")
        await svc.settled()

        status, body = await api_get(cfg.api.socket, "/alarms")
        (alarm,) = json.loads(body)["alarms"]
        assert os.stat(cfg.api.socket).st_mode & 0o777 == 0o660  # bound private, moved in
        assert status == 200 and alarm["rule_id"] == "walk-in-high" and alarm["unit"] == "walk-in"
        path = f"/alarms/{alarm['id']}"
        status, text = await api_post(
            cfg.api.socket,
            f"{path}/corrective-action",
            {**SAM, "action": "x", "disposition": "kept"},
        )
        assert status == 409 and "acknowledge" in text
        status, _ = await api_post(cfg.api.socket, f"{path}/ack", {"by": "Sam Okafor"})
        assert status == 400  # a name alone no longer signs anything
        status, text = await api_post(cfg.api.socket, f"{path}/ack", {**SAM, "pin": "0000"})
        assert status == 401 and "wrong staff ID or PIN" in text
        status, other = await api_post(
            cfg.api.socket, f"{path}/ack", {"staff_id": "99", "pin": "0"}
        )
        # An unknown ID is answered exactly like a member's wrong PIN, and names nobody.
        assert status == 401 and other == text and "Sam" not in other
        conn = aiohttp.UnixConnector(path=cfg.api.socket)
        async with aiohttp.ClientSession(connector=conn) as s:
            # What a web page can send without asking first is refused before any PIN check.
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            async with s.post(f"http://agent{path}/ack", data="staff_id=12", headers=form) as r:
                assert r.status == 415
            for limit in ("inf", "nan", "-5", "99999999"):
                async with s.get(f"http://agent/alarms/history?limit={limit}") as r:
                    assert r.status == 400, limit
            check = {**SAM, "check": "delivery", "unit": "no-such-fridge", "value": 0.2}
            async with s.post("http://agent/haccp/checks", json=check) as r:
                assert r.status == 400 and "no unit" in await r.text()
            check = {**SAM, "check": "delivery", "unit": "walk-in", "notes": "x" * 5000}
            async with s.post("http://agent/haccp/checks", json=check) as r:
                assert r.status == 400 and "at most" in await r.text()
        status, _ = await api_post(cfg.api.socket, f"{path}/ack", SAM)
        assert status == 200
        status, body = await api_post(
            cfg.api.socket,
            f"{path}/corrective-action",
            {
                **SAM,
                "action": "door seal replaced; stock moved",
                "disposition": "moved",
                "verification": 4.1,
            },
        )
        assert status == 200 and json.loads(body)["alarm"]["state"] == "actioned"
        await send(3.5)
        status, body = await api_get(cfg.api.socket, "/alarms/history")
        (done,) = json.loads(body)["alarms"]
        assert done["state"] == "closed" and done["acked_by"] == "Sam Okafor (12)"
        assert done["action_by"] == "Sam Okafor (12)"

        status, body = await api_post(
            cfg.api.socket,
            "/haccp/checks",
            {
                "unit": "walk-in",
                "check": "calibration",
                "staff_id": "jo",
                "pin": "1357",
                "value": 0.2,
                "reference": 0.0,
                "passed": True,
            },
        )
        assert status == 201
        status, _ = await api_post(
            cfg.api.socket,
            "/haccp/checks",
            {"unit": "walk-in", "check": "vibes", "staff_id": "jo", "pin": "1357"},
        )
        assert status == 400
        status, body = await api_get(cfg.api.socket, "/haccp/records?unit=walk-in")
        kinds = [r["kind"] for r in json.loads(body)["records"]]
        assert kinds[:2] == [
            "unit_config",
            "reading",
        ]  # described, then its readings
        for k in ("excursion_start", "acknowledged", "corrective_action", "excursion_end", "check"):
            assert k in kinds
        (check,) = [r for r in json.loads(body)["records"] if r["kind"] == "check"]
        assert check["data"]["by"] == "Jo Bianchi (jo)" and check["data"]["staff_id"] == "jo"
        assert "1357" not in body
        status, body = await api_get(cfg.api.socket, "/haccp/verify")
        assert json.loads(body)["ok"] is True
        status, body = await api_get(cfg.api.socket, "/rules")
        stats = {r["id"]: r for r in json.loads(body)["rules"]}
        assert stats["walk-in-high"]["count"] == 1 and stats["walk-in-high"]["last_fired"]

        # five wrong PINs in a row lock Sam out, even with the right PIN after them
        probe = {"unit": "walk-in", "check": "probe", "value": 3.9, "staff_id": "12"}
        for expected in (401, 401, 401, 401, 429):
            status, text = await api_post(cfg.api.socket, "/haccp/checks", {**probe, "pin": "0000"})
            assert status == expected, text
        assert "locked for 60 s" in text
        status, text = await api_post(cfg.api.socket, "/haccp/checks", {**probe, "pin": "2468"})
        assert status == 429 and "try again in 60 s" in text
        await clock.advance(61)
        body = {**SAM, "unit": "walk-in", "check": "probe", "value": 3.9}
        status, _ = await api_post(cfg.api.socket, "/haccp/checks", body)
        assert status == 201
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)
    assert await asyncio.to_thread(main, ["haccp", "verify", "-c", cfg.source]) == 0
    assert "intact" in capsys.readouterr().out


def test_rules_check_and_replay_cli(tmp_path: Path, capsys) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    assert main(["rules", "check", str(rules)]) == 0
    assert "OK: 2 rule(s) (1 from 1 HACCP unit(s), region us)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.replace("minutes = 120", 'minutes = "two hours"'))
    assert main(["rules", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:16: rules[0].trigger.minutes: must be a number" in err, err
    data = tmp_path / "readings.csv"
    rows = ["ts,device,point,value"]
    rows += [
        f"2025-06-15T10:{m:02d}:00,walkin,room_temp,{3.0 if m < 10 else 7.0}"
        for m in range(0, 60, 5)
    ]
    rows += ["2025-06-15T11:00:00,walkin,room_temp,3.5"]
    data.write_text("\n".join(rows) + "\n")
    assert main(["rules", "replay", str(rules), "--data", str(data), "--tz", "Europe/London"]) == 0
    out = capsys.readouterr().out
    assert "2025-06-15 10:40:00 FIRE  walk-in-high value=7.0 since 2025-06-15 10:10:00" in out, out
    assert "2025-06-15 11:00:00 CLEAR walk-in-high" in out
    (tmp_path / "x.csv").write_text("ts,device,point,value\nyesterday,walkin,room_temp,1\n")
    assert main(["rules", "replay", str(rules), "--data", str(tmp_path / "x.csv")]) == 2
    assert "x.csv:2: ts: not a time" in capsys.readouterr().err


def test_rules_file_missing_means_no_rules(write_config, clock) -> None:
    cfg = load_config(write_config(textwrap.dedent(MINIMAL_VENUE)))
    agent = Agent(cfg, load_library(), clock=clock)
    area = rules_area.build(agent.context)
    (svc,) = area.services
    assert svc.name == "rules"
    assert area.shared[RULES_SERVICE].engine.rules == []
