"""The agent under systemd's notify protocol, through the test's own NOTIFY_SOCKET (a real unix
datagram socket): READY once the API answers, WATCHDOG=1 at half the period while it works,
STOPPING on SIGTERM; nothing once the event loop is wedged or the store writer is stuck."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time

import pytest

from edge_agent.clock import SystemClock
from edge_agent.messages import Reading
from edge_agent.sd_notify import Notifier, watchdog_interval_s
from edge_agent.store.writer import StoreWriter
from edge_agent.watchdog import Heartbeat, WriterProgress
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.fridge_model import FridgeModel
from tests.conftest import MINIMAL_VENUE, device_block

HERE = os.path.dirname(__file__)
ROOT = os.path.dirname(HERE)
WATCHDOG_USEC = 200_000  # pings every 0.1 s


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield path, sock
    sock.close()


async def recv(sock: socket.socket, limit_s: float) -> list[str]:
    """One datagram's fields, or fail after limit_s."""
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), limit_s)
    return data.decode().split("\n")


async def start_agent(write_config, notify_path: str, script: list[str]):
    sim = FridgeSimulator(FridgeModel(time.time(), seed=3), SystemClock())
    await sim.start()
    path = write_config(MINIMAL_VENUE + device_block("f1", sim.port, poll=0.1))
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    env.pop("WATCHDOG_PID", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *script, path, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    return sim, proc


async def test_ready_pings_and_stopping(write_config, notify_socket):
    notify_path, sock = notify_socket
    sim, proc = await start_agent(
        write_config, notify_path, ["-m", "beerflow_edge", "run", "--config"]
    )
    try:
        first = await recv(sock, 20)
        assert first[0] == "READY=1", first
        assert any(f.startswith("STATUS=") for f in first)
        pings = []
        t0 = time.monotonic()
        while len(pings) < 5:
            fields = await recv(sock, 2)
            assert fields[0] == "WATCHDOG=1", fields
            pings.append(time.monotonic())
        # five pings at half of 0.2 s: well inside the period, not a busy loop either
        span = pings[-1] - t0
        assert 0.35 < span < 2.0, span
        proc.send_signal(signal.SIGTERM)
        while (fields := await recv(sock, 10))[0] == "WATCHDOG=1":
            pass
        assert fields == ["STOPPING=1"]
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim.stop()


async def test_wedged_event_loop_stops_the_pings(write_config, notify_socket):
    notify_path, sock = notify_socket
    sim, proc = await start_agent(write_config, notify_path, ["-m", "tests.watchdog_child"])
    try:
        assert (await recv(sock, 20))[0] == "READY=1"
        for _ in range(3):
            assert (await recv(sock, 2))[0] == "WATCHDOG=1"
        proc.send_signal(signal.SIGUSR1)
        # A ping already in flight may arrive; after it, nothing for five ping periods
        # (2.5 watchdog periods: systemd would have killed the agent twice over).
        got = []
        try:
            while len(got) < 3:
                got.append(await recv(sock, 0.5))
        except TimeoutError:
            pass
        assert len(got) <= 1, got
        assert proc.returncode is None  # wedged, not dead: only the watchdog can tell
    finally:
        proc.kill()
        await proc.wait()
        await sim.stop()


async def test_stuck_store_writer_withholds_the_ping(tmp_path, notify_socket):
    notify_path, sock = notify_socket
    writer = StoreWriter(str(tmp_path / "s.db"))
    await writer.open()
    task = asyncio.create_task(writer.run())
    hb = Heartbeat(
        Notifier(notify_path), 0.2, [("store writer", WriterProgress(writer))], asyncio.Event()
    )
    release = threading.Event()
    try:
        assert hb.beat()  # idle writer: progress
        assert (await recv(sock, 2)) == ["WATCHDOG=1"]
        # The writer thread hangs inside a job (a dead SD card) while readings queue behind it.
        stuck = asyncio.ensure_future(writer.run_job(lambda conn: release.wait(30)))
        await asyncio.sleep(0)
        for i in range(3):
            await writer.submit(Reading("f1", "t", 4.0, time.time() + i, "°C"))
        hb.beat()  # first look: records the commit count
        assert not hb.beat() and not hb.beat()
        with pytest.raises(TimeoutError):
            await recv(sock, 0.3)
        assert hb.withheld >= 2
        release.set()
        await stuck
        await writer.flush()
        assert hb.beat()
        assert (await recv(sock, 2)) == ["WATCHDOG=1"]
    finally:
        release.set()
        hb.notifier.close()
        await writer.stop()
        await task


def test_notifier_disabled_without_socket_and_interval_parsing():
    assert not Notifier.from_env({}).enabled
    Notifier.from_env({}).send("READY=1")  # a no-op, not an error
    assert Notifier("@abstract").address == "\0abstract"
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "x"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None


def test_notifier_reports_a_missing_socket(tmp_path):
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    try:
        with pytest.raises(FileNotFoundError):
            notifier.send("WATCHDOG=1")
    finally:
        notifier.close()
