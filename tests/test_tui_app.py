"""The kitchen terminal driven by Textual's pilot against a REAL agent (in-process, ManualClock,
Modbus fridge simulators): overview, every screen, locale switch, agent restart → reconnecting →
recovered. SVG snapshots are checked for their key texts (temperatures and ages are volatile)."""

from __future__ import annotations

import html
import os
import re
import shutil

import pytest

from tests.helpers import until
from tests.peers.tui_agent import (  # noqa: F401 - agent is a fixture
    agent,
    run_for,
    start_agent,
    start_fridges,
    venue_toml,
)
from tui.api_client import AgentClient
from tui.app import KitchenApp
from tui.model import Status
from tui.widgets import UnitTile

SIZE = (150, 46)


def svg_text(app: KitchenApp, tmp_path, name: str) -> str:
    """Save the screen as SVG (copied to $TUI_SNAPSHOT_DIR for the docs) and return its text."""
    path = app.save_screenshot(filename=f"{name}.svg", path=str(tmp_path))
    if out := os.environ.get("TUI_SNAPSHOT_DIR"):
        shutil.copy(path, os.path.join(out, f"{name}.svg"))
    with open(path, encoding="utf-8") as fh:
        raw = fh.read()
    texts = re.findall(r"<text[^>]*>(.*?)</text>", raw, flags=re.S)
    return html.unescape(" ".join(texts)).replace("\xa0", " ")


async def latest_room_temps(socket: str) -> dict[str, float]:
    client = AgentClient(socket)
    try:
        return {
            r.device: float(r.value)  # type: ignore[arg-type]
            for r in await client.latest()
            if r.point == "room_temp"
        }
    finally:
        await client.close()


async def test_overview_shows_every_unit_live_with_limit_status_and_sparkline(agent, tmp_path):
    temps = await latest_room_temps(agent.socket)
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.query(UnitTile)) == 3, what="three tiles")
        # the history route fills the sparklines with the last hour (60 polls)
        await until(lambda: all(len(app.history.get(d, ())) >= 60 for d in temps), what="history")
        await until(lambda: all(t.view.spark for t in app.query(UnitTile)), what="sparklines")
        await pilot.pause()
        tiles = {t.view.device_id: t.view for t in app.query(UnitTile)}
        assert set(tiles) == {"walk-in", "freezer", "bar-fridge"}
        for dev, temp in temps.items():
            assert tiles[dev].temp == pytest.approx(temp)
        # limits from the rules service's HACCP units: the walk-in's own, the UK presets
        assert tiles["freezer"].limit.max_c == -15.0 and tiles["walk-in"].limit.max_c == 6.0
        assert tiles["bar-fridge"].limit.max_c == 8.0
        assert all(v.status is not Status.OFFLINE for v in tiles.values())
        text = svg_text(app, tmp_path, "overview")
        assert "Walk-in cold room" in text and "Chest freezer" in text and "Bar fridge" in text
        assert "limit ≤ 6.0 °C" in text and "limit ≤ -15.0 °C" in text
        assert "1 Overview" in text and "[L] Italiano" in text
        # status is shown as a word (colour-blind safe), whichever it is right now
        words = ("✔ OK", "⏸ PAUSED", "▲ CHECK", "✖ ALARM")
        assert sum(text.count(w) for w in words) == 3


async def test_every_screen_renders_and_missing_services_say_not_available(agent, tmp_path):
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.snapshot is not None, what="first snapshot")
        await pilot.press("4")
        await pilot.pause()
        text = svg_text(app, tmp_path, "devices")
        assert "Walk-in cold room" in text and "● online" in text and "Last error" in text
        await pilot.press("5")
        await pilot.pause()
        assert "No keg or scale devices" in svg_text(app, tmp_path, "stock")
        # sync is not provisioned on this agent: said plainly, no crash.
        await pilot.press("6")
        await pilot.pause()
        assert "no sync service yet" in svg_text(app, tmp_path, "sync")
        # acknowledging with no active alarm: nothing to do, the app keeps running
        await pilot.press("2", "a")
        await pilot.pause()
        assert app.current == "alarms" and app.is_running


async def test_locale_switch_to_italian_and_back(agent, tmp_path):
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.query(UnitTile)) == 3, what="tiles")
        await pilot.press("l")
        await pilot.pause()
        text = svg_text(app, tmp_path, "overview-it")
        assert "1 Panoramica" in text and "2 Allarmi" in text and "[L] English" in text
        assert "limite ≤ 6,0 °C" in text  # decimal comma
        assert "sicure" in text or "in allarme" in text or "da verificare" in text
        await pilot.press("4")
        await pilot.pause()
        assert "Ultimo contatto" in svg_text(app, tmp_path, "devices-it")
        await pilot.press("l", "1")
        await pilot.pause()
        assert "1 Overview" in svg_text(app, tmp_path, "overview-en-again")


async def test_fahrenheit_venue_shows_fahrenheit(agent, tmp_path):
    temps = await latest_room_temps(agent.socket)
    app = KitchenApp(agent.socket, "en", "F", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.query(UnitTile)) == 3, what="tiles")
        view = next(t.view for t in app.query(UnitTile) if t.view.device_id == "walk-in")
        assert view.unit == "°F"
        assert view.temp == pytest.approx(temps["walk-in"] * 9 / 5 + 32)
        await pilot.pause()
        assert "limit ≤ 42.8 °F" in svg_text(app, tmp_path, "overview-f")


async def test_agent_restart_shows_reconnecting_then_recovers(agent, tmp_path, clock):
    app = KitchenApp(agent.socket, "en", "C", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.snapshot is not None, what="first snapshot")
        first_uptime = app.snapshot.health.uptime_s
        await agent.stop()
        await until(lambda: app.agent_down is not None, what="reconnecting state")
        await pilot.pause()
        text = svg_text(app, tmp_path, "reconnecting")
        assert "Reconnecting to the agent" in text
        # the last known tiles stay on screen while the agent is away
        assert len(app.query(UnitTile)) == 3

        restarted = await start_agent(agent.config.source, clock)
        try:
            await clock.advance(1)
            await until(lambda: app.agent_down is None, limit_s=15, what="recovery")
            await until(
                lambda: app.snapshot.health.uptime_s < first_uptime + 1, what="new agent seen"
            )
            await pilot.pause()
            assert "Reconnecting" not in svg_text(app, tmp_path, "recovered")
            assert len(app.query(UnitTile)) == 3
        finally:
            await restarted.stop()
