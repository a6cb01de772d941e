"""The terminal for real, in tmux, against `beerflow-edge demo` (what `make demo` runs): a real
terminal, real keys, the screen read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def wait_for(cond, limit_s: float, what: str, session: str | None = None) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            seen = capture(session) if session else ""
            raise AssertionError(f"timed out waiting for {what}; the screen:\n{seen}")
        time.sleep(0.1)


def capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False
    ).stdout


def test_tui_in_tmux_against_the_demo(tmp_path):
    demo_dir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "beerflow_edge", "demo", "--dir", str(demo_dir), "--duration", "60"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    session = f"tui-{uuid.uuid4().hex[:8]}"
    sock = str(demo_dir / "api.sock")
    try:
        wait_for(lambda: os.path.exists(sock), 20, "the demo agent's socket")
        code = f'from tui.app import run_tui; run_tui("{sock}", "en", "C")'
        cmd = f"{sys.executable} -c '{code}'"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", "-c", ROOT, cmd],
            check=True,
        )
        # The demo's fridges are UK HACCP units: the cold-holding limit is 8 °C.
        expected = ("Walk-in cold room", "Chest freezer", "≤ 8.0 °C")
        wait_for(
            lambda: all(text in capture(session) for text in expected),
            40,
            "the overview tiles",
            session,
        )
        assert "Overview" in capture(session)

        subprocess.run(["tmux", "send-keys", "-t", session, "4"], check=True)
        wait_for(lambda: "● online" in capture(session), 10, "the devices screen")
        assert "Last seen" in capture(session)

        subprocess.run(["tmux", "send-keys", "-t", session, "l"], check=True)
        wait_for(lambda: "Panoramica" in capture(session), 10, "Italian", session)
        assert "● in linea" in capture(session)

        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_for(
            lambda: (
                subprocess.run(
                    ["tmux", "has-session", "-t", session], capture_output=True, check=False
                ).returncode
                != 0
            ),
            10,
            "the app to quit",
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
