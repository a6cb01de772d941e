"""The agent as a real process: clean SIGTERM/SIGINT shutdown, and kill -9 at random instants
never loses a reading it reported accepted, nor corrupts the store."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time

import pytest

from edge_agent.clock import SystemClock
from edge_agent.store.reader import StoreReader
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.fridge_model import FridgeModel
from tests.conftest import MINIMAL_VENUE, device_block
from tests.helpers import api_get

HERE = os.path.dirname(__file__)
ROOT = os.path.dirname(HERE)


async def wait_for_api(sock: str, proc: asyncio.subprocess.Process, limit_s: float = 20.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"agent exited early with {proc.returncode}")
        if os.path.exists(sock):
            try:
                status, body = await api_get(sock, "/health")
                if status == 200:
                    return json.loads(body)
            except OSError:
                pass
        await asyncio.sleep(0.02)
    raise AssertionError("agent API never came up")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_shuts_down_cleanly_and_fast(write_config, sig):
    sims = [FridgeSimulator(FridgeModel(time.time(), seed=i), SystemClock()) for i in range(3)]
    for s in sims:
        await s.start()
    proc: asyncio.subprocess.Process | None = None
    try:
        text = MINIMAL_VENUE + "".join(
            device_block(f"f{i}", s.port, poll=0.2) for i, s in enumerate(sims)
        )
        path = write_config(text)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "beerflow_edge",
            "run",
            "--config",
            path,
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        sock = os.path.join(os.path.dirname(path), "api.sock")
        await wait_for_api(sock, proc)
        # let every device answer at least twice
        for _ in range(500):
            _, body = await api_get(sock, "/devices")
            devs = json.loads(body)["devices"]
            if all(d.get("polls", 0) >= 2 for d in devs):
                break
            await asyncio.sleep(0.02)
        _, body = await api_get(sock, "/health")
        accepted_before = json.loads(body)["store"]["readings_accepted"]
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, err.decode()
        assert elapsed < 2.0, f"shutdown took {elapsed:.2f} s"
        assert not os.path.exists(sock)
        with StoreReader(os.path.join(os.path.dirname(path), "beerflow.db")) as r:
            assert r.events(limit=1)[0].kind == "agent.stopped"
            assert r.count_readings() >= accepted_before > 0
            assert {d for d in r.devices()} == {"f0", "f1", "f2"}
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()  # a failed assertion must not leave an agent running
            await proc.communicate()
        for s in sims:
            await s.stop()


KILLS = 24


def check_store(db: str, acked: dict[str, int]) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for dev, top in acked.items():
            n, distinct, below = conn.execute(
                "SELECT count(*), count(DISTINCT value), "
                "sum(CASE WHEN value <= ? THEN 1 ELSE 0 END) "
                "FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = ?",
                (top, dev),
            ).fetchone()
            assert below == top + 1, f"{dev}: {below} of {top + 1} accepted readings found"
            assert n == distinct, f"{dev}: duplicated readings"
    finally:
        conn.close()


async def test_kill_9_at_random_instants_loses_nothing_accepted(write_config, tmp_path):
    path = write_config(MINIMAL_VENUE)
    db = str(tmp_path / "beerflow.db")
    rng = random.Random(20261124)
    acked: dict[str, int] = {}
    for k in range(KILLS):
        device = f"load-{k}"
        errlog = tmp_path / f"child-{k}.err"
        with open(errlog, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                os.path.join(HERE, "ingest_child.py"),
                path,
                device,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        try:
            assert proc.stdout is not None
            first = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert first.startswith(b"ACK "), (first, errlog.read_text()[-3000:])
            await asyncio.sleep(rng.uniform(0.0, 0.4))  # a random instant mid-ingest
        finally:
            if proc.returncode is None:
                proc.kill()  # also when the test fails: never leave a child running
            rest, _ = await proc.communicate()
        lines = [first, *rest.splitlines()]
        acked[device] = max(int(x.split()[1]) for x in lines if x.startswith(b"ACK "))
        assert proc.returncode == -signal.SIGKILL

        check_store(db, {device: acked[device]})
    check_store(db, acked)  # a later crash never took an earlier run's rows with it
    assert len(acked) == KILLS
    assert sum(acked.values()) > KILLS * 500  # it was really ingesting, not idling
