"""No key, tap or state crashes the terminal, and keys typed fast land where staff meant them.

Against a REAL agent (in-process, Modbus fridge simulators, rules service, staff PINs): random
key sequences and taps (hypothesis) on every screen and in every form, with the agent up, down
(nothing on the socket) and restarting underneath; then the two fast-typing cases seen at the
pass: a probe reading typed straight after `p`, an acknowledgement typed straight after `a`."""

from __future__ import annotations

import json
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual import events

from tests.helpers import api_get, until
from tests.peers.tui_agent import (  # noqa: F401 - agent is a fixture
    agent,
    run_until,
    start_agent,
)
from tui.app import KitchenApp
from tui.forms import PinForm, ProbeForm, _Form

KEYS = (
    *"0123456789acdlpxz,.-",
    "tab",
    "shift+tab",
    "enter",
    "escape",
    "space",
    "up",
    "down",
    "left",
    "right",
    "backspace",
    "home",
    "end",
    "pageup",
    "pagedown",
    "ctrl+p",
)
SIZES = ((80, 24), (120, 40))
# Keys that open each form or screen first, so every one of them is mashed.
OPENERS = ("", "2", "3", "4", "5", "6", "p", "2a", "2c", "3d", "3p")

CHARS = {"tab": "\t", "enter": "\r", "escape": "\x1b", "space": " ", "backspace": "\x7f"}


def key_event(key: str) -> events.Key:
    char = CHARS.get(key, key if len(key) == 1 else None)
    return events.Key(key, char)


def type_fast(app: KitchenApp, keys: list[str]) -> None:
    """Every key into the app's queue at once, as a fast typist or a key-repeat does: no
    waiting for the screen between keys."""
    for k in keys:
        app.post_message(key_event(k))


class Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


actions = st.lists(
    st.one_of(
        st.sampled_from(KEYS),
        st.tuples(st.just("tap"), st.integers(0, 119), st.integers(0, 39)),
    ),
    max_size=30,
)


async def mash(app: KitchenApp, pilot, opener: str, steps: list, size: tuple[int, int]) -> None:
    for k in opener:
        await pilot.press(k)
    for step in steps:
        if isinstance(step, tuple):
            _, x, y = step
            await pilot.click(offset=(x % size[0], y % size[1]))
        else:
            app.post_message(key_event(step))
    for _ in range(3):
        await pilot.pause()


def assert_alive(app: KitchenApp, caught: Caught) -> None:
    assert app.is_running and app._exception is None
    assert not caught.records, [r.getMessage() for r in caught.records]


SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    opener=st.sampled_from(OPENERS),
    steps=actions,
    size=st.sampled_from(SIZES),
    up=st.booleans(),
)
async def test_mashing_keys_and_taps_never_crashes(agent, tmp_path, opener, steps, size, up):
    caught = Caught()
    logging.getLogger("tui").addHandler(caught)
    socket = agent.socket if up else str(tmp_path / "nobody-here.sock")
    app = KitchenApp(socket, "en", "C", poll_s=0.05, export_dir=str(tmp_path))
    try:
        async with app.run_test(size=size) as pilot:
            if up:
                await until(lambda: app.snapshot is not None, what="first snapshot")
            else:
                await until(lambda: app.agent_down is not None, what="agent down")
            await mash(app, pilot, opener, steps, size)
            assert_alive(app, caught)
    finally:
        logging.getLogger("tui").removeHandler(caught)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(opener=st.sampled_from(OPENERS), before=actions, after=actions)
async def test_mashing_while_the_agent_restarts(agent, tmp_path, clock, opener, before, after):
    caught = Caught()
    logging.getLogger("tui").addHandler(caught)
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05, export_dir=str(tmp_path))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.snapshot is not None, what="first snapshot")
            await agent.stop()
            await mash(app, pilot, opener, before, (80, 24))
            await until(lambda: app.agent_down is not None, what="agent down")
            restarted = await start_agent(agent.config.source, clock)
            # the fixture stops whichever agent is running at the end
            agent.agent, agent.task = restarted.agent, restarted.task
            await mash(app, pilot, "", after, (80, 24))
            await until(lambda: app.agent_down is None, limit_s=15, what="agent back")
            assert_alive(app, caught)
    finally:
        logging.getLogger("tui").removeHandler(caught)


async def test_an_unexpected_error_is_shown_and_logged_and_the_terminal_stays_up(agent, tmp_path):
    caught = Caught()
    logging.getLogger("tui").addHandler(caught)
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05, export_dir=str(tmp_path))

    def broken(*_: object) -> None:
        raise RuntimeError("a bug in a view")

    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.snapshot is not None, what="first snapshot")
            app.action_mark_done = broken  # type: ignore[method-assign]
            await pilot.press("d")
            await until(lambda: bool(caught.records), what="the error logged")
            assert "RuntimeError: a bug in a view" in logging.Formatter().format(caught.records[0])
            assert any("RuntimeError" in str(n.message) for n in app._notifications)
            # still running, still answering keys
            await pilot.press("4")
            await pilot.pause()
            assert app.is_running and app.current == "devices" and app._exception is None
    finally:
        logging.getLogger("tui").removeHandler(caught)


async def test_probe_key_before_data_and_while_the_agent_is_away(tmp_path):
    app = KitchenApp(str(tmp_path / "nobody-here.sock"), "en", "C", poll_s=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")  # before the first data arrives
        await until(lambda: app.agent_down is not None, what="agent down")
        await pilot.press("p", "2", "a", "c", "3", "d", "p")
        await pilot.pause()
        assert app.is_running and app._exception is None
        assert not isinstance(app.screen, _Form)
        assert any("waiting for the agent" in str(n.message) for n in app._notifications)


async def get(agent, path: str):
    status, body = await api_get(agent.socket, path)
    assert status == 200, (path, body)
    return json.loads(body)


async def test_probe_reading_typed_straight_after_opening_the_form(agent, tmp_path):
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05)
    async with app.run_test(size=(80, 24)):
        await until(lambda: app.snapshot is not None and app.snapshot.staff, what="staff")
        # p Tab 5 Tab 1 2 Tab 2468 Enter, all at once: unit, value, staff ("12"), PIN
        type_fast(app, ["p", "tab", "5", "tab", "1", "2", "tab", *"2468", "enter"])
        await until(
            lambda: (
                app.snapshot.checks is not None
                and any(c.id == "probe:walk-in" and c.done_at for c in app.snapshot.checks)
            ),
            what="the probe reading recorded",
        )
        assert not isinstance(app.screen, ProbeForm)
        assert app.current == "overview"  # the digits did not switch screens behind the form
    checks = (await get(agent, "/haccp/records?kind=check"))["records"]
    (probe,) = [r for r in checks if r["data"]["check"] == "probe"]
    assert probe["unit"] == "walk-in" and probe["data"]["value"] == 5.0
    assert probe["data"]["staff_id"] == "12"


async def test_acknowledgement_typed_straight_after_opening_the_form(agent, tmp_path):
    agent.sims[0].model.compressor_dead = True

    async def alarm_raised() -> bool:
        return bool((await get(agent, "/alarms"))["alarms"])

    await run_until(agent, alarm_raised, 60, "the walk-in alarm")
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: bool(app.snapshot and app.snapshot.alarms), what="alarm")
        await pilot.press("2")
        await pilot.pause()
        # a, then "jo" picks Jo Bianchi from the list, Tab to the PIN, 1357, Enter
        type_fast(app, ["a", "j", "o", "tab", *"1357", "enter"])
        await until(
            lambda: bool(app.snapshot.alarms) and app.snapshot.alarms[0].state == "acknowledged",
            what="acknowledged",
        )
        assert not isinstance(app.screen, PinForm)
    (alarm,) = (await get(agent, "/alarms"))["alarms"]
    assert alarm["acked_by"] == "Jo Bianchi (jo)"
