"""Pure parts of the terminal: status rules, sparklines, catalogues, number parsing, and the
API client's three failure kinds against a real (absent, or route-less) agent."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.peers.tui_agent import start_agent, start_fridges, venue_toml
from tui.api_client import (
    AgentClient,
    AgentUnreachable,
    Alarm,
    Device,
    HaccpUnit,
    NotAvailable,
    Reading,
    Rejected,
)
from tui.forms import parse_number
from tui.i18n import EN, IT, Translator
from tui.model import (
    Limit,
    Status,
    check_state,
    classify,
    open_alarms,
    order_tiles,
    sort_alarms,
    sparkline,
    unit_limits,
    unit_views,
)


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
        # the controller's own alarm relay is a reason to look, not an alarm of ours
        (3.0, {"device_alarm": True}, (Status.WARNING, "reason.device_alarm")),
        (3.0, {"active_alarm": True, "defrost": True}, (Status.ALARM, "reason.active_alarm")),
        (None, {"connected": False}, (Status.OFFLINE, None)),
        (None, {"connected": False, "active_alarm": True}, (Status.ALARM, "reason.active_alarm")),
        (3.0, {"connected": False}, (Status.OFFLINE, None)),
        (None, {}, (Status.NO_DATA, None)),
    ],
)
def test_classify(temp, kw, expected):
    args = {"connected": True, "defrost": False, "device_alarm": False, "active_alarm": False}
    assert classify(temp, Limit(5.0, None), **{**args, **kw}) == expected


def _classify(temp: float, limit: Limit | None) -> tuple[Status, str | None]:
    return classify(
        temp, limit, connected=True, defrost=False, device_alarm=False, active_alarm=False
    )


def test_limits_ceilings_floors_bands_and_none():
    assert _classify(60.0, Limit(None, 63.0)) == (Status.WARNING, "reason.below_limit")
    cellar = Limit(13.0, 11.0)
    assert _classify(12.0, cellar) == (Status.OK, None)
    assert _classify(10.5, cellar) == (Status.WARNING, "reason.below_limit")
    assert _classify(13.5, cellar) == (Status.WARNING, "reason.above_limit")
    # no HACCP unit, no limit: a coffee machine at 28 °C or a wine fridge at 6 °C is fine
    assert _classify(28.0, None) == (Status.OK, None)


def _dev(i: str, connected: bool = True) -> Device:
    return Device(i, i.title(), "kitchen", "p", True, connected, 0.0, 1, 0, 0, None)


def test_only_haccp_units_get_a_limit_and_a_band_stays_a_band():
    units = [
        HaccpUnit("cellar", "Cellar", "cellar", "cellar", "temperature", 13.0, 11.0),
        HaccpUnit("fridge", "Fridge", "cold_hold", "fridge", "room_temp", 8.0, None),
    ]
    devices = [_dev("cellar"), _dev("fridge"), _dev("wine"), _dev("coffee")]
    latest = [
        Reading("cellar", "temperature", 12.0, "°C", 1.0, "good"),
        Reading("fridge", "room_temp", 9.0, "°C", 1.0, "good"),
        Reading("wine", "temperature", 6.0, "°C", 1.0, "good"),
        Reading("coffee", "boiler_temp", 28.0, "°C", 1.0, "good"),
    ]
    views = {
        v.device_id: v
        for v in unit_views(
            devices, latest, unit="C", kinds={}, history={}, limits=unit_limits(units)
        )
    }
    assert views["cellar"].limit == Limit(13.0, 11.0) and views["cellar"].status is Status.OK
    assert views["fridge"].status is Status.WARNING
    assert views["wine"].limit is None and views["wine"].status is Status.OK
    assert views["coffee"].limit is None and views["coffee"].status is Status.OK


def test_tiles_alarms_first_then_to_check_then_due_checks_then_the_rest():
    devices = [_dev(i) for i in ("a", "b", "c", "d", "e")] + [_dev("f", connected=False)]
    latest = [
        Reading(d, "temperature", t, "°C", 1.0, "good")
        for d, t in zip("abcde", (3, 9, 3, 3, 3), strict=True)
    ]
    alarms = [Alarm("1", "d", "temperature", "high", "active", "", 0.0)]
    views = unit_views(
        devices,
        latest,
        unit="C",
        kinds={},
        history={},
        alarms=alarms,
        limits={"b": Limit(8.0, None)},
    )
    ordered = [v.device_id for v in order_tiles(views, due={"e"})]
    assert ordered == ["d", "b", "f", "e", "a", "c"]


def test_one_alarm_count():
    alarms = [
        Alarm("1", "d", "p", "high", "active", "", 0.0),
        Alarm("2", "d", "p", "high", "cleared", "", 0.0),
        Alarm("3", "d", "p", "high", "closed", "", 0.0),
    ]
    assert open_alarms(alarms) == 2 and open_alarms(None) == 0


def test_check_states():
    assert check_state(10.0, 5.0, 20.0) == "done"  # done late is still done
    assert check_state(None, 5.0, 20.0) == "overdue"
    assert check_state(None, 30.0, 20.0) == "due" and check_state(None, None, 20.0) == "due"


@pytest.mark.parametrize(
    ("locale", "counts", "text"),
    [
        ("en", (1, 0, 0, 3), "1 alarm"),
        ("en", (2, 1, 1, 3), "2 alarms · 1 to check · 1 without signal"),
        ("en", (0, 0, 0, 1), "The unit is safe"),
        ("en", (0, 0, 0, 14), "All 14 units safe"),
        ("it", (1, 2, 0, 3), "1 allarme · 2 da verificare"),
        ("it", (3, 0, 0, 3), "3 allarmi"),
        ("it", (0, 0, 0, 1), "L'unità è sicura"),
    ],
)
def test_summary_plurals(locale, counts, text):
    from tui.views import summary_line

    assert summary_line(Translator(locale), *counts) == text


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
        assert exc.value.status == 401 and "wrong staff ID or PIN" in exc.value.reason
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
