"""kill -9 of the real agent while devices publish bursts over a real Mosquitto: every message
the box acknowledged is in the store, and none twice (bench/mqtt_kill.py runs the same harness
with 50 kills)."""

from __future__ import annotations

from pathlib import Path

from bench.mqtt_kill import run


def test_kill_9_during_bursts_loses_and_duplicates_nothing_acknowledged(tmp_path: Path) -> None:
    figures = run(tmp_path, kills=3, devices=5, burst=800, pause_s=0.2, seed=7)
    assert figures["kills"] == 3
    assert figures["messages_published"] > 1000  # there was something to lose
    assert figures["acknowledged_but_lost"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert figures["unknown_values"] == 0, figures
