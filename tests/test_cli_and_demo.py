"""The demo runs for real (simulators, agent, store) and leaves a store the CLI can read; logs
can be JSON lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from edge_agent.logging_setup import JsonFormatter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_runs_and_leaves_an_inspectable_store(tmp_path):
    d = tmp_path / "demo"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "beerflow_edge",
            "demo",
            "--dir",
            str(d),
            "--duration",
            "4",
            "--devices",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    cfg = str(d / "venue.toml")
    # The banner counts what the config holds; events and a status line, not a device table.
    from edge_agent.config.loader import load_config

    n = len(load_config(cfg).devices)
    assert f"Simulated venue: {n} devices: " in out, out
    assert "devices online" in out and "readings stored" in out
    assert "/v1/fleet" in out and "admin.token" in out
    assert len(out.splitlines()) < 40, out
    readings = subprocess.run(
        [
            sys.executable,
            "-m",
            "beerflow_edge",
            "readings",
            "-c",
            cfg,
            "-d",
            "reach-in-fridge",
            "--latest",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    points = {r["point"]: r for r in json.loads(readings)}
    assert points["room_temp"]["unit"] == "°C"
    assert points["setpoint"]["value"] == 4.0


def test_json_log_lines():
    rec = logging.LogRecord(
        "edge_agent.devices", logging.WARNING, __file__, 1, "%s: offline", ("fridge",), None
    )
    line = json.loads(JsonFormatter().format(rec))
    assert line["level"] == "warning"
    assert line["msg"] == "fridge: offline"
    assert line["logger"] == "edge_agent.devices"


def test_unknown_device_in_readings_is_a_clear_error(tmp_path, write_config, capsys):
    from beerflow_edge.cli import main
    from edge_agent.store.writer import ensure_store
    from tests.conftest import MINIMAL_VENUE

    cfg = write_config(MINIMAL_VENUE)
    ensure_store(str(tmp_path / "beerflow.db"))
    assert main(["readings", "-c", cfg, "-d", "ghost"]) == 2
    assert "unknown device 'ghost'" in capsys.readouterr().err


def test_status_json_without_a_running_agent(tmp_path, write_config, capsys):
    from beerflow_edge.cli import main
    from edge_agent.store.writer import ensure_store
    from tests.conftest import MINIMAL_VENUE

    cfg = write_config(MINIMAL_VENUE)
    ensure_store(str(tmp_path / "beerflow.db"))
    assert main(["status", "-c", cfg, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agent"] is None
    assert out["store"]["readings"] == 0
    assert out["venue"]["id"] == "the-crown"
