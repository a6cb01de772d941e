"""Checks against limits, missed checks and the manager's sign-off, through a running agent's
local API on a real store: a probe reading outside its unit's limit is an excursion that needs
a corrective action; opening checks are answered item by item and `passed` is computed; a check
not done by its deadline becomes a `missed_check` record; a manager (and only a manager) signs
a week off with a PIN and unsigned weeks are flagged."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beerflow_edge.agent import Agent
from edge_agent.clock import ManualClock
from edge_agent.config.loader import load_config
from edge_agent.store.schema import connect
from firmware_profiles.loader import load_library
from rules.api import RULES_SERVICE
from rules.cli import verify_store
from rules.haccp import chain, signoff
from rules.haccp.checks import DEFAULT_CHECKS, CheckError, evaluate, spec_for
from rules.service import RulesService
from tests.conftest import MINIMAL_VENUE
from tests.helpers import api_get, until
from tests.test_rules_agent import RULES, STAFF, api_post

SAM = {"staff_id": "12", "pin": "2468"}  # staff
JO = {"staff_id": "jo", "pin": "1357"}  # manager
# Monday 2026-03-02 08:00 in London (GMT): the day's checks are all still ahead.
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC).timestamp()


def test_items_are_held_to_their_limits_and_passed_is_computed() -> None:
    probe = spec_for(DEFAULT_CHECKS, "probe")
    assert probe is not None
    ok = evaluate(probe, {"value": 4.0}, (None, 5.0))
    assert ok["passed"] is True and ok["value"] == 4.0 and ok["limit_max"] == 5.0
    bad = evaluate(probe, {"value": 22.0}, (None, 8.0))
    assert bad["passed"] is False and bad["needs_action"] and bad["failed"] == ["value"]
    opening = spec_for(DEFAULT_CHECKS, "opening")
    assert opening is not None
    with pytest.raises(CheckError, match="missing working, clean, stock"):
        evaluate(opening, {})
    with pytest.raises(CheckError, match="no item"):
        evaluate(opening, {"vibes": True}, all_passed=True)
    one_bad = evaluate(opening, {"clean": False}, all_passed=True)
    assert one_bad["passed"] is False and one_bad["failed"] == ["clean"]
    assert [i["passed"] for i in one_bad["items"]] == [True, False, True]
    with pytest.raises(CheckError):
        evaluate(probe, {"value": float("nan")}, (None, 8.0))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
async def agent(write_config, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Agent]:
    (tmp_path / "rules.toml").write_text(RULES.replace('region = "us"', 'region = "uk"'))
    cfg = load_config(write_config(MINIMAL_VENUE.replace('"UTC"', '"Europe/London"') + STAFF))
    a = Agent(cfg, load_library(), clock=clock)
    task = asyncio.create_task(a.run(install_signals=False))
    await until(a.api_ready.is_set, what="API up")
    await until(lambda: a.areas is not None, what="areas built")
    await until(a.shared(RULES_SERVICE).ready.is_set, what="rules ready")
    yield a
    a.stop()
    await asyncio.wait_for(task, 10)


def records(a: Agent, kind: str) -> list[chain.HaccpRecord]:
    conn = connect(a.config.storage.path, readonly=True)
    try:
        return list(chain.records(conn, kind=kind))
    finally:
        conn.close()


async def post(a: Agent, path: str, body: dict) -> tuple[int, dict | str]:
    status, text = await api_post(a.config.api.socket, path, body)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


async def due(a: Agent) -> dict[str, dict]:
    _, body = await api_get(a.config.api.socket, "/haccp/checks/due")
    return {c["id"]: c for c in json.loads(body)["checks"]}


async def test_probe_outside_the_limit_is_an_excursion_until_actioned(agent: Agent) -> None:
    status, body = await post(
        agent, "/haccp/checks", {**SAM, "unit": "walk-in", "check": "probe", "value": 22.0}
    )
    assert status == 201 and isinstance(body, dict) and body["passed"] is False
    (rec,) = records(agent, "check")
    assert rec.data["passed"] is False and rec.data["limit_max"] == 8.0  # UK legal limit
    assert rec.data["items"][0] == {
        "item": "value",
        "label": "Probe temperature",
        "value": 22.0,
        "max": 8.0,
        "passed": False,
    }
    assert (await due(agent))["probe:walk-in"]["status"] == "needs_action"
    # `passed: true` from the terminal does not make 22 °C pass.
    status, body = await post(
        agent,
        "/haccp/checks",
        {**SAM, "unit": "walk-in", "check": "probe", "value": 22.0, "passed": True},
    )
    assert status == 201 and isinstance(body, dict) and body["passed"] is False
    seq = rec.seq
    action = {**SAM, "action": "stock moved to the reach-in", "disposition": "moved"}
    status, body = await post(agent, f"/haccp/checks/{seq}/corrective-action", action)
    assert status == 201, body
    assert (await due(agent))["probe:walk-in"]["status"] == "done"
    status, body = await post(agent, f"/haccp/checks/{seq}/corrective-action", action)
    assert status == 409 and "already has a corrective action" in str(body)
    (act,) = records(agent, "check_action")
    assert act.data["check_seq"] == seq and act.data["failed"] == ["value"]


async def test_opening_check_answered_item_by_item(agent: Agent) -> None:
    base = {**SAM, "unit": "walk-in", "check": "opening"}
    status, body = await post(agent, "/haccp/checks", base)
    assert status == 400 and "missing working, clean, stock" in str(body)
    assert records(agent, "check") == []  # a refused check changes nothing
    status, body = await post(
        agent, "/haccp/checks", {**base, "items": {"working": True, "clean": True, "stock": False}}
    )
    assert status == 201 and isinstance(body, dict) and body["passed"] is False
    status, body = await post(agent, "/haccp/checks", {**base, "passed": True})
    assert status == 201 and isinstance(body, dict) and body["passed"] is True


async def test_checks_not_done_by_their_deadline_become_missed_records(
    agent: Agent, clock: ManualClock
) -> None:
    svc: RulesService = agent.shared(RULES_SERVICE)
    await post(
        agent, "/haccp/checks", {**SAM, "unit": "walk-in", "check": "opening", "passed": True}
    )
    await clock.advance(6.5 * 3600)  # 14:30: the probe reading (due 14:00) was never taken
    await until(lambda: len(records(agent, "missed_check")) == 2, what="missed checks")
    missed = {(r.unit, r.data["check"]) for r in records(agent, "missed_check")}
    # the opening check was done; the probe reading and the calibration (due 10:00) were not
    assert missed == {("walk-in", "probe"), ("thermometer", "calibration")}
    rows = await due(agent)
    assert rows["probe:walk-in"]["status"] == "missed"
    assert rows["opening:walk-in"]["status"] == "done"
    # Scanning again (as a restarted service does at start) adds nothing twice.
    assert await svc.writer.transact(svc._missed_op(clock.time())) is None
    assert len(records(agent, "missed_check")) == 2
    assert verify_store(agent.config.storage.path)[0]


async def test_only_a_manager_signs_a_week_off_and_unsigned_weeks_are_flagged(
    agent: Agent, clock: ManualClock
) -> None:
    await post(agent, "/haccp/checks", {**SAM, "unit": "walk-in", "check": "probe", "value": 22.0})
    await clock.advance(7 * 86400)  # the next Monday: last week has ended, unsigned
    _, body = await api_get(agent.config.api.socket, "/haccp/signoffs?periods=2")
    periods = json.loads(body)["periods"]
    assert [p["period"] for p in periods] == ["2026-W10", "2026-W11"]
    assert periods[0]["flagged"] and not periods[1]["flagged"]
    assert periods[0]["review"]["failed_checks_without_action"] == 1
    status, body = await post(agent, "/haccp/signoffs", {**SAM})
    assert status == 403 and "manager" in str(body)
    status, body = await post(agent, "/haccp/signoffs", {**JO, "notes": "probe issue followed up"})
    assert status == 201 and isinstance(body, dict), body
    assert body["period"] == "2026-W10" and body["by"] == "Jo Bianchi (jo)"
    assert body["review"]["failed_checks"] == 1 and body["review"]["missed_checks"] >= 1
    status, body = await post(agent, "/haccp/signoffs", {**JO, "period": "2026-W10"})
    assert status == 409
    _, body = await api_get(agent.config.api.socket, "/haccp/signoffs?periods=2")
    first = json.loads(body)["periods"][0]
    assert first["signed"] and not first["flagged"] and first["by"] == "Jo Bianchi (jo)"
    (rec,) = records(agent, "signoff")
    assert rec.unit == signoff.VENUE and rec.data["staff_id"] == "jo"
