"""Merging discovered devices into a venue config never overwrites what an installer wrote."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from beerflow_edge.discovery import merge_proposals
from edge_agent.config.loader import load_config_text
from tests.conftest import MINIMAL_VENUE

EXISTING = (
    MINIMAL_VENUE
    + """
# the installer's own names and comments
[[devices]]
id = "walk-in"
profile = "dixell-xr77u"
label = "Walk-in cold room"
host = "127.0.0.1"
port = 1502
unit_id = 1
"""
)


def test_known_device_is_left_alone_and_new_ones_appended():
    proposals = [
        {
            "id": "dixell-xr77u",
            "profile": "dixell-xr77u",
            "host": "127.0.0.1",
            "port": 1502,
            "unit_id": 1,
        },
        {
            "id": "walk-in",
            "profile": "dixell-xr60cx",
            "host": "127.0.0.1",
            "port": 1503,
            "unit_id": 1,
        },
    ]
    text, added = merge_proposals(EXISTING, proposals)
    assert text.startswith(EXISTING.rstrip("\n"))  # nothing rewritten, comments kept
    devices = tomllib.loads(text)["devices"]
    assert [d["id"] for d in devices] == ["walk-in", "walk-in-2"]
    assert devices[0]["label"] == "Walk-in cold room"
    assert added == ["walk-in-2 (dixell-xr60cx)"]
    load_config_text(text, "merged.toml")  # and the result is a valid config


def test_needed_bus_is_added_once():
    bus = {"id": "rs485-1", "port": "/dev/ttyUSB0", "baudrate": 9600}
    proposals = [
        {"id": "a", "profile": "dixell-xr77u", "bus": "rs485-1", "unit_id": u, "_bus": bus}
        for u in (1, 2)
    ]
    text, added = merge_proposals(MINIMAL_VENUE, proposals)
    doc = tomllib.loads(text)
    assert len(doc["buses"]) == 1
    assert [d["unit_id"] for d in doc["devices"]] == [1, 2]
    assert len(added) == 2
    load_config_text(text, "merged.toml")


def test_merging_twice_changes_nothing_the_second_time():
    proposals = [{"id": "x", "profile": "dixell-xr77u", "host": "10.0.0.9", "unit_id": 4}]
    once, _ = merge_proposals(MINIMAL_VENUE, proposals)
    twice, added = merge_proposals(once, proposals)
    assert twice == once and added == []


@given(st.lists(st.text(max_size=20), max_size=6))
def test_any_names_become_valid_unique_ids(names):
    proposals = [
        {"id": n, "profile": "dixell-xr77u", "host": "h", "unit_id": i + 1}
        for i, n in enumerate(names)
    ]
    text, added = merge_proposals(MINIMAL_VENUE, proposals)
    assert len(added) == len(names)
    if names:
        cfg = load_config_text(text, "merged.toml")
        assert len({d.id for d in cfg.devices}) == len(names)


async def test_discover_cli_scans_a_real_controller_and_merges(fridge, write_config, capsys):
    import asyncio

    from beerflow_edge.cli import main

    cfg = write_config(EXISTING)
    before = Path(cfg).read_text(encoding="utf-8")
    rc = await asyncio.to_thread(
        main,
        ["discover", "--modbus-tcp", f"127.0.0.1:{fridge.port}", "--units", "1-2", "--write", cfg],
    )
    assert rc == 0
    out = capsys.readouterr()
    assert "dixell-xr77u" in out.out
    after = Path(cfg).read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # the installer's text is untouched
    merged = load_config_text(after, cfg)
    found = [d for d in merged.devices if d.port == fridge.port]
    assert [(d.profile, d.unit_id) for d in found] == [("dixell-xr77u", 1)]
    # a second scan finds nothing new
    rc = await asyncio.to_thread(
        main,
        ["discover", "--modbus-tcp", f"127.0.0.1:{fridge.port}", "--units", "1", "--write", cfg],
    )
    assert rc == 0
    assert "nothing new" in capsys.readouterr().out


def test_discover_needs_something_to_scan(capsys):
    from beerflow_edge.cli import main

    assert main(["discover"]) == 2
    assert "nothing to scan" in capsys.readouterr().err
