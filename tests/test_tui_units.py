"""Pure parts of the terminal: status rules, sparklines, catalogues, number parsing, and the
API client's three failure kinds against a real (absent, or route-less) agent."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.peers.tui_agent import start_agent, start_fridges, venue_toml
from tui.api_client import AgentClient, AgentUnreachable, Alarm, NotAvailable, Rejected
from tui.forms import parse_number
from tui.i18n import EN, IT, Translator
from tui.model import Limit, Status, classify, limit_for, sort_alarms, sparkline


def test_catalogues_have_the_same_keys_and_placeholders():
    assert set(EN) == set(IT)
    for key in EN:
        assert sorted(re.findall(r"{(\w+)}", EN[key])) == sorted(re.findall(r"{(\w+)}", IT[key]))


def test_translator_numbers_and_ages():
    t = Translator("it")
    assert t.number(3.25) == "3,2" or t.number(3.25) == "3,3"
    assert t("age.m", n=5) == "5 min fa"
    assert t.toggle() == "en" and t.age(30) == "30 s ago" and t.age(None) == "never"


@pytest.mark.parametrize(
    ("temp", "kw", "expected"),
    [
        (3.0, {}, (Status.OK, None)),
        (6.0, {}, (Status.WARNING, "reason.above_limit")),
        (9.0, {"defrost": True}, (Status.SUPPRESSED, "reason.defrost")),
        (3.0, {"device_alarm": True}, (Status.ALARM, "reason.device_alarm")),
        (3.0, {"active_alarm": True, "defrost": True}, (Status.ALARM, "reason.active_alarm")),
        (None, {"connected": False}, (Status.OFFLINE, None)),
        (3.0, {"connected": False}, (Status.OFFLINE, None)),
        (None, {}, (Status.NO_DATA, None)),
    ],
)
def test_classify(temp, kw, expected):
    args = {"connected": True, "defrost": False, "device_alarm": False, "active_alarm": False}
    assert classify(temp, Limit(5.0, True), **{**args, **kw}) == expected


def test_limits_by_kind_of_unit():
    assert limit_for(3.0) == Limit(5.0, True)
    assert limit_for(-20.0) == Limit(-15.0, True)
    assert limit_for(65.0) == Limit(63.0, False)
    hot = classify(
        60.0, limit_for(65.0), connected=True, defrost=False, device_alarm=False, active_alarm=False
    )
    assert hot == (Status.WARNING, "reason.below_limit")


@given(st.lists(st.floats(-50, 150), max_size=500), st.integers(1, 40))
def test_sparkline_is_bounded_and_total(values, width):
    s = sparkline(values, width)
    assert len(s) <= width and len(s) == min(width, len(values))
    assert set(s) <= set("▁▂▃▄▅▆▇█")


def test_sparkline_shows_the_shape():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"


def test_alarm_order_active_then_severity_then_oldest():
    def a(i, sev, state, ts):
        return Alarm(i, "d", "p", sev, state, "", ts)

    got = sort_alarms(
        [
            a("1", "high", "active", 10),
            a("2", "critical", "acknowledged", 1),
            a("3", "critical", "active", 20),
            a("4", "critical", "active", 5),
            a("5", "low", "cleared", 0),
            a("6", "critical", "actioned", 0),
        ]
    )
    assert [x.id for x in got] == ["4", "3", "1", "2", "5", "6"]


@given(st.text(max_size=20))
def test_parse_number_never_raises(text):
    v = parse_number(text)
    assert v is None or v == v


def test_parse_number_accepts_decimal_comma():
    assert parse_number("3,5") == 3.5 and parse_number(" -18 ") == -18.0
    assert parse_number("nan") is None and parse_number("tre") is None


async def test_client_says_unreachable_when_no_agent(tmp_path):
    client = AgentClient(str(tmp_path / "nobody.sock"))
    try:
        with pytest.raises(AgentUnreachable):
            await client.health()
    finally:
        await client.close()


async def test_client_against_a_real_agent_without_rules_or_sync(write_config, clock):
    """No rules.toml and no cloud: empty answers and plain refusals, never a crash."""
    sims = await start_fridges(clock, 1)
    running = await start_agent(write_config(venue_toml(sims)), clock)
    client = AgentClient(running.socket)
    try:
        health = await client.health()
        assert health.venue_id == "the-crown" and health.devices_total == 1
        assert await client.alarms() == [] and await client.haccp_units() == []
        due = await client.haccp_checks_due()
        assert due.checks == () and due.end - due.start in (82800, 86400, 90000)
        log = await client.haccp_log("walk-in", due.start, due.end)
        assert log.entries == () and log.gaps == ()
        assert (await client.verify_chain()).ok
        with pytest.raises(NotAvailable):
            await client.sync_status()  # not provisioned
        with pytest.raises(Rejected) as exc:
            await client.acknowledge("1", "12", "2468")
        assert exc.value.status == 409 and "no alarm 1" in exc.value.reason
        with pytest.raises(Rejected) as exc:
            await client.record_probe_reading("walk-in", 3.5, "12", "1111")
        assert exc.value.status == 401 and "wrong PIN for Sam Okafor" in exc.value.reason
        # an answer with a reason (unknown device) is a refusal, not "not available"
        with pytest.raises(Rejected):
            await client.latest("nope")
        with pytest.raises(Rejected):
            await client.history("walk-in", "room_temp", since=float("nan"))
    finally:
        await client.close()
        await running.stop()
        for sim in sims:
            await sim.stop()
