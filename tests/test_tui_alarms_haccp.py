"""The terminal's alarm and HACCP flows end to end, against a REAL agent with the rules service
(rules.toml next to the venue config) and staff PINs in the venue config: a fridge's compressor
dies in the simulator, the rules service raises the alarm, staff acknowledge it with a PIN (a
wrong PIN first), record a corrective action, enter a probe reading and tick off a check — and
the store's alarm history and HACCP log hold it all, with the hash chain intact."""

from __future__ import annotations

import json

from textual.widgets import Checkbox, DataTable, Input, RadioButton, Select

from tests.helpers import api_get, until
from tests.peers.tui_agent import (  # noqa: F401 - agent is a fixture
    agent,
    run_for,
    run_until,
    start_agent,
    start_fridges,
    venue_toml,
)
from tests.test_tui_app import SIZE, svg_text
from tui.app import KitchenApp
from tui.forms import CorrectiveActionForm, PinForm, ProbeForm, StaffPicker


async def get(agent, path: str):
    status, body = await api_get(agent.socket, path)
    assert status == 200, (path, body)
    return json.loads(body)


async def fill(pilot, app: KitchenApp, **fields: str) -> None:
    """Staff by tapping their name in the list; the other fields by their text."""
    form = app.screen
    for name, text in fields.items():
        if name == "staff":
            picker = form.query_one("#staff-pick", StaffPicker)
            index = [m.id for m in picker.staff].index(text)
            button = form.query_one(f"#staff-{index}")
            button.scroll_visible(animate=False, immediate=True)
            await pilot.pause()
            await pilot.click(button)
        else:
            form.query_one(f"#{name}", Input).value = text
    await pilot.pause()


async def test_alarm_ack_with_pin_corrective_action_and_chain(agent, tmp_path):
    agent.sims[0].model.compressor_dead = True  # the walk-in starts warming up

    async def alarm_raised() -> bool:
        return bool((await get(agent, "/alarms"))["alarms"])

    minutes = await run_until(agent, alarm_raised, 60, "the walk-in alarm")
    assert minutes >= 10  # the unit's 10-minute delay held it back
    (alarm,) = (await get(agent, "/alarms"))["alarms"]
    assert alarm["rule_id"] == "walk-in-high" and alarm["unit"] == "walk-in"

    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05, export_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.snapshot is not None and bool(app.snapshot.alarms), what="alarm")
        await pilot.press("2")
        await pilot.pause()
        text = svg_text(app, tmp_path, "tui-alarms-active")
        assert "Walk-in cold room above 6 °C for 10 min" in text and "▲ active" in text
        assert "! high" in text and "1 alarm" in text

        # a wrong PIN: refused on screen, nothing recorded
        await pilot.press("a")
        await until(lambda: isinstance(app.screen, PinForm), what="PIN form")
        await fill(pilot, app, staff="12", pin="1111")
        await pilot.click("#ok")
        await until(lambda: not isinstance(app.screen, PinForm), what="form closed")
        await until(lambda: "Wrong staff or PIN" in app.last_outcome, what="refusal")
        await pilot.pause()
        shown = " ".join(svg_text(app, tmp_path, "refused").split())
        # said plainly, without naming whose ID it was
        assert "Wrong staff or PIN" in shown and "Sam Okafor" not in app.last_outcome
        (still,) = (await get(agent, "/alarms"))["alarms"]
        assert still["acked_by"] is None and still["state"] == "raised"
        assert not (await get(agent, "/haccp/records?kind=acknowledged"))["records"]

        # the right PIN
        await pilot.press("a")
        await until(lambda: isinstance(app.screen, PinForm), what="PIN form")
        await fill(pilot, app, staff="12", pin="2468")
        app.screen.query_one("#pin", Input).focus()
        await pilot.press("enter")
        await until(
            lambda: app.snapshot.alarms and app.snapshot.alarms[0].state == "acknowledged",
            what="acknowledged on screen",
        )
        # the outcome line names the unit and the person, not their IDs
        assert app.last_outcome == "✔ Walk-in cold room: alarm acknowledged by Sam Okafor."

        # corrective action, verification reading typed with a decimal comma
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, CorrectiveActionForm), what="action form")
        form = app.screen
        assert "Walk-in cold room" in str(form.query_one("#form-title").render())
        # nothing is preselected: Confirm without a product disposition is refused
        assert form.query_one("#disposition").pressed_index == -1
        await pilot.click("#act-moved_stock")
        await pilot.click("#act-called_engineer")
        await fill(pilot, app, action="to the reach-in", verification="4,5", staff="12", pin="2468")
        await pilot.click("#ok")
        await pilot.pause()
        assert "product" in str(form.query_one("#form-error").render())
        form.query_one("#disp-moved", RadioButton).value = True
        assert form.query_one("#act-moved_stock", Checkbox).value
        svg_text(app, tmp_path, "tui-corrective-form")
        await pilot.click("#ok")
        await pilot.pause()
        assert not form.is_active, str(form.query_one("#form-error").render())
        await until(
            lambda: app.snapshot.alarms and app.snapshot.alarms[0].state == "actioned",
            what="actioned on screen",
        )
        await pilot.pause()
        text = svg_text(app, tmp_path, "tui-alarms")
        assert "actioned" in text and "Sam Okafor (12)" in text

    (done,) = (await get(agent, "/alarms/history"))["alarms"]
    assert done["acked_by"] == "Sam Okafor (12)" and done["action_by"] == "Sam Okafor (12)"
    assert done["action"] == {
        "action": "Moved stock to another unit; Called the engineer; to the reach-in",
        "disposition": "moved",
        "verification": 4.5,
    }
    records = (await get(agent, "/haccp/records?unit=walk-in"))["records"]
    kinds = [r["kind"] for r in records]
    assert kinds.index("excursion_start") < kinds.index("acknowledged")
    assert kinds.index("acknowledged") < kinds.index("corrective_action")
    (ca,) = [r for r in records if r["kind"] == "corrective_action"]
    assert ca["data"]["by"] == "Sam Okafor (12)" and ca["data"]["verification"] == 4.5
    verify = await get(agent, "/haccp/verify")
    assert verify["ok"] is True and verify["records"] >= len(records)
    # the wrong PIN is on record as an event, without the PIN
    status, body = await api_get(agent.socket, "/events?kind=staff.pin_failed")
    if status == 200:
        assert "staff.pin_failed" in body and "1111" not in body


async def test_haccp_checks_probe_entry_log_and_locale(agent, tmp_path):
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05, export_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.snapshot is not None and app.snapshot.checks, what="checks")
        await pilot.press("3")
        await pilot.pause()
        text = svg_text(app, tmp_path, "tui-haccp-due")
        assert "Checks due today" in text and "Opening check" in text
        assert "Thermometer calibration" in text and ("○ to do" in text or "OVERDUE" in text)
        assert len(app.snapshot.checks) == 3 * 3 + 1

        # manual probe reading for the walk-in (the first HACCP unit)
        await pilot.press("p")
        await until(lambda: isinstance(app.screen, ProbeForm), what="probe form")
        assert app.screen.query_one("#unit", Select).value == "walk-in"
        await fill(pilot, app, value="3,8", staff="jo", pin="1357")
        await pilot.click("#ok")
        await until(
            lambda: any(
                c.id == "probe:walk-in" and c.done_by == "Jo Bianchi (jo)"
                for c in app.snapshot.checks
            ),
            what="probe check done on screen",
        )

        # tick off the first check due (an opening check) with a PIN
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, PinForm), what="PIN form")
        await fill(pilot, app, staff="12", pin="2468")
        app.screen.query_one("#pin", Input).focus()
        await pilot.press("enter")
        await until(
            lambda: sum(c.done_at is not None for c in app.snapshot.checks) == 2,
            what="opening check done",
        )

        # the day's log for the unit of the selected check, with the chain verified
        table = app.query_one("#haccp-table", DataTable)
        table.move_cursor(row=table.get_row_index("probe:walk-in"))
        await pilot.click("#log")
        await until(
            lambda: "Records intact" in str(app.query_one("#haccp-log").render()),
            what="day's log",
        )
        await pilot.pause()
        text = svg_text(app, tmp_path, "tui-haccp")
        assert "Today's log: Walk-in cold room" in text and "Jo Bianchi (jo)" in text
        assert "probe" in text and "3.8 °C" in text and "reading" in text

        await pilot.click("#export")
        await until(lambda: any(tmp_path.glob("haccp-*.csv")), what="export")

        await pilot.press("l")
        await pilot.pause()
        text = svg_text(app, tmp_path, "tui-haccp-it")
        assert "Controlli di oggi" in text and "Controllo di apertura" in text
        assert "Lettura sonda" in text

    checks = (await get(agent, "/haccp/records?kind=check"))["records"]
    probe = next(r for r in checks if r["data"]["check"] == "probe")
    assert probe["unit"] == "walk-in" and probe["data"]["value"] == 3.8
    assert probe["data"]["by"] == "Jo Bianchi (jo)" and probe["data"]["staff_id"] == "jo"
    opening = next(r for r in checks if r["data"]["check"] == "opening")
    assert opening["data"]["passed"] is True and opening["data"]["staff_id"] == "12"
    assert (await get(agent, "/haccp/verify"))["ok"] is True
    (csv_file,) = tmp_path.glob("haccp-*.csv")
    assert "probe" in csv_file.read_text()
