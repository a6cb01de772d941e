"""A small kitchen screen (80×24) and the alarm sound, against a REAL agent (in-process, Modbus
fridge simulators, rules service) with the walk-in in alarm: the alarmed tile comes first, the
header counts what the Alarms screen lists, every alarm column and every form's Confirm is on
screen, the key legend is whole; the bell rings until silenced and rings again for a new alarm."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Button, DataTable, Static

from tests.helpers import api_get, until
from tests.peers.tui_agent import (  # noqa: F401 - agent is a fixture
    agent,
    run_until,
)
from tests.test_tui_app import svg_text
from tui.app import KitchenApp
from tui.forms import CorrectiveActionForm, PinForm, ProbeForm
from tui.model import Status
from tui.widgets import UnitTile

SMALL = (80, 24)


async def alarm_on_the_walk_in(agent) -> None:
    agent.sims[0].model.compressor_dead = True

    async def raised() -> bool:
        status, body = await api_get(agent.socket, "/alarms")
        return status == 200 and bool(json.loads(body)["alarms"])

    await run_until(agent, raised, 60, "the walk-in alarm")


def on_screen(app: KitchenApp, widget) -> bool:
    screen = app.screen.region
    region = widget.region
    return region.width > 0 and screen.contains_region(region)


async def test_everything_fits_and_works_at_80x24(agent, tmp_path):
    await alarm_on_the_walk_in(agent)
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05, bell_every_s=60)
    async with app.run_test(size=SMALL) as pilot:
        await until(lambda: bool(app.snapshot and app.snapshot.alarms), what="alarm")
        await until(lambda: len(app.query(UnitTile)) == 3, what="tiles")
        await pilot.pause()
        await pilot.pause()
        tiles = [w for w in app.query_one("#tiles").children if isinstance(w, UnitTile)]
        assert tiles[0].view.device_id == "walk-in" and tiles[0].view.status is Status.ALARM
        assert all(on_screen(app, t) for t in tiles)
        text = svg_text(app, tmp_path, "small-overview")
        assert "✖ 1 alarm" in text  # the same one alarm the Alarms screen lists
        keys = app.query_one("#keys", Static)
        assert "[Q] Quit" in str(keys.render()) and on_screen(app, keys)

        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#alarms-table", DataTable)
        assert table.row_count == 1
        widths = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert widths <= table.size.width, "a column of the Alarms table is off screen"
        assert on_screen(app, app.query_one("#ack", Button))
        svg_text(app, tmp_path, "small-alarms")

        for key, form in (("a", PinForm), ("c", CorrectiveActionForm), ("p", ProbeForm)):
            await pilot.press(key)
            await until(lambda f=form: isinstance(app.screen, f), what=form.__name__)
            await pilot.pause()
            for bid in ("#ok", "#cancel", "#pin", "#key-0"):
                assert on_screen(app, app.screen.query_one(bid)), (form.__name__, bid)
            svg_text(app, tmp_path, f"small-{form.__name__}")
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, PinForm | ProbeForm), what="closed")
            await until(lambda: not isinstance(app.screen, CorrectiveActionForm), what="closed")


@pytest.mark.parametrize("locale", ["en", "it"])
async def test_alarm_rings_until_silenced(agent, locale):
    await alarm_on_the_walk_in(agent)
    app = KitchenApp(agent.socket, locale, "C", poll_s=0.05, bell_every_s=0.05, silence_s=600)
    async with app.run_test(size=SMALL) as pilot:
        await until(lambda: app.rings >= 3, what="the bell repeating")
        await pilot.press("s")
        await pilot.pause()
        silenced_at = app.rings
        # the period comes round while silenced: no ring (the alarm is still unacknowledged)
        app._ring_if_needed()
        assert app.rings == silenced_at and app.silenced_until > 0
        assert any("min" in str(n.message) for n in app._notifications)
        # a new alarm is heard again at once, silence or not
        app._ringing = frozenset()
        await until(lambda: app.rings > silenced_at, what="ringing for a new alarm")
        assert app.silenced_until == 0.0
