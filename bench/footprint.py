"""RSS and CPU of the agent polling N simulated Modbus devices, simulators excluded.
With `--mixed`: the agent against 200 mixed simulated devices (Modbus TCP, MQTT, OPC-UA,
BLE, serial scales) from `bench/mixed_fleet.py`, also in its own process.

The simulators run in their own process; the agent is a real `beerflow-edge run` process. After
a warm-up, CPU time is measured over a window (default 60 s) and RSS sampled every second.
The store is created before the agent starts, as on any box after its first boot. The
baseline, measured in the same run, is a bare Python process importing the same runtime
modules and idling in asyncio: what the interpreter costs before the agent does anything.

    .venv/bin/python bench/footprint.py [--devices 100] [--poll 5] [--window 60]
    .venv/bin/python bench/footprint.py --mixed [--opcua-security sign_and_encrypt] [--window 60]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from typing import Any

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench._common import report

BASELINE = (
    "import asyncio, aiohttp, pymodbus.client, prometheus_client, sqlite3, beerflow_edge.agent\n"
    "asyncio.run(asyncio.sleep(3600))\n"
)
# The mixed fleet's agent also loads every transport's driver (the registry imports them).
BASELINE_MIXED = (
    "import asyncio, aiohttp, pymodbus.client, prometheus_client, sqlite3, beerflow_edge.agent\n"
    "import drivers.modbus.factory, drivers.mqtt.factory, drivers.opcua.factory\n"
    "import drivers.ble.factory, drivers.serial.factory\n"
    "asyncio.run(asyncio.sleep(3600))\n"
)


def measure(proc: psutil.Process, window: float) -> tuple[float, float, float]:
    """(cpu % of one core over the window, max RSS MB, final RSS MB)."""
    t0 = time.monotonic()
    c0 = sum(proc.cpu_times()[:2])
    peak = 0.0
    while time.monotonic() - t0 < window:
        peak = max(peak, proc.memory_info().rss / 1e6)
        time.sleep(1.0)
    c1 = sum(proc.cpu_times()[:2])
    elapsed = time.monotonic() - t0
    rss = proc.memory_info().rss / 1e6
    return 100 * (c1 - c0) / elapsed, max(peak, rss), rss


def api_json(sock: str, path: str) -> dict[str, Any]:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(sock)

    c = Conn("agent", timeout=5)
    c.request("GET", urllib.parse.quote(path, safe="/?=&"))
    doc: dict[str, Any] = json.loads(c.getresponse().read())
    return doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--poll", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=None, help="default 12 s, 45 s with --mixed")
    ap.add_argument("--mixed", action="store_true", help="200 mixed devices (mixed_fleet.py)")
    ap.add_argument(
        "--opcua-security", choices=("none", "sign", "sign_and_encrypt"), default="sign_and_encrypt"
    )
    ap.add_argument("--fleet-args", default="", help="extra arguments for mixed_fleet.py")
    ap.add_argument(
        "--py-spy",
        metavar="OUT",
        help="with --mixed: sample the agent with py-spy (non-blocking) during the window and "
        "write collapsed stacks to OUT (pip install py-spy)",
    )
    args = ap.parse_args()
    if args.mixed:
        run_mixed(args)
        return
    if args.warmup is None:
        args.warmup = 12.0
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        n = args.devices
        sims = subprocess.Popen(
            [py, "-m", "beerflow_edge", "simulate", "--base-port", "0", "--count", str(n)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        agent = base = None
        try:
            assert sims.stdout is not None
            line = sims.stdout.readline().split()
            assert line and line[0] == "READY", line
            ports = [int(p) for p in line[1:]]
            cfg = os.path.join(d, "venue.toml")
            with open(cfg, "w") as fh:
                fh.write('[venue]\nid = "bench"\nname = "Bench"\n')
                for i, port in enumerate(ports):
                    fh.write(
                        f'\n[[devices]]\nid = "fridge-{i:03d}"\nprofile = "dixell-xr77u"\n'
                        f'host = "127.0.0.1"\nport = {port}\npoll_interval_s = {args.poll}\n'
                    )
            from edge_agent.store.writer import ensure_store

            ensure_store(os.path.join(d, "beerflow.db"))
            agent = subprocess.Popen(
                [py, "-m", "beerflow_edge", "run", "--config", cfg, "--log-level", "WARNING"],
                cwd=ROOT,
            )
            base = subprocess.Popen([py, "-c", BASELINE], cwd=ROOT)
            time.sleep(args.warmup)  # start-up, first connections, first polls
            sock = os.path.join(d, "api.sock")
            before = api_json(sock, "/health")["store"]["readings_accepted"]
            ap_, bp = psutil.Process(agent.pid), psutil.Process(base.pid)
            b0, t0 = sum(bp.cpu_times()[:2]), time.monotonic()
            cpu, peak, rss = measure(ap_, args.window)
            b_cpu = 100 * (sum(bp.cpu_times()[:2]) - b0) / (time.monotonic() - t0)
            after = api_json(sock, "/health")
            b_rss = bp.memory_info().rss / 1e6
            connected = after["devices"]["connected"]
            rate = (after["store"]["readings_accepted"] - before) / args.window
        finally:
            for p in (agent, base, sims):
                if p is not None:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
    figures = {
        "devices": args.devices,
        "devices_connected": connected,
        "poll_interval_s": args.poll,
        "window_s": args.window,
        "agent_cpu_pct_of_core": round(cpu, 3),
        "agent_rss_mb": round(rss, 1),
        "agent_rss_peak_mb": round(peak, 1),
        "baseline_rss_mb": round(b_rss, 1),
        "rss_ratio_to_baseline": round(rss / b_rss, 2),
        "baseline_cpu_pct_of_core": round(b_cpu, 3),
        "readings_per_s_stored": round(rate, 1),
    }
    report(
        f"footprint: agent polling {args.devices} Modbus devices",
        figures,
        ["targets (100 devices @ 5 s): RSS <= 60 MB, CPU <= 0.5 % of a core"],
    )


def _stop(
    proc: subprocess.Popen[str] | subprocess.Popen[bytes] | None, group: bool = False
) -> None:
    """Terminate one process we started (its whole session when it leads one), then reap it."""
    if proc is None or proc.poll() is not None:
        return
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.terminate()
    try:
        proc.wait(30 if group else 10)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(5)


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its live children (the simulators: for context only)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(p.cpu_times()[:2])
    return total


def _readings_by_device(db_path: str, t0: float, t1: float) -> dict[str, int]:
    """Readings stored per device with a timestamp inside the window (read-only, WAL)."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT s.device_id, COUNT(*) FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE r.ts >= ? AND r.ts < ? GROUP BY s.device_id",
            (t0, t1),
        ).fetchall()
    finally:
        con.close()
    return {str(d): int(n) for d, n in rows}


def _start_py_spy(pid: int, window: float, out: str) -> subprocess.Popen[bytes]:
    """Sample the agent without pausing it (--nonblocking), so the CPU figure stays honest."""
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--nonblocking",
            "--gil",  # only the thread holding the GIL: CPU, not fsync or epoll waits
            "--pid",
            str(pid),
            "--duration",
            str(int(window)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            out,
        ],
        stdout=subprocess.DEVNULL,
    )


def run_mixed(args: argparse.Namespace) -> None:
    warmup = 45.0 if args.warmup is None else args.warmup
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        fleet_cmd = [
            py,
            os.path.join(ROOT, "bench", "mixed_fleet.py"),
            "--workdir",
            os.path.join(d, "fleet"),
            "--poll",
            str(args.poll),
            "--opcua-security",
            args.opcua_security,
            *args.fleet_args.split(),
        ]
        # Its own session: the fleet's socat, mosquitto and dbus children go with it.
        sims = subprocess.Popen(
            fleet_cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True
        )
        agent = base = None
        try:
            assert sims.stdout is not None
            t_start = time.monotonic()
            line = sims.stdout.readline().split(" ", 1)
            assert line[0] == "READY", f"mixed_fleet.py did not start: {line}"
            fleet = json.loads(line[1])
            print(f"fleet up in {time.monotonic() - t_start:.1f} s: {fleet['counts']}", flush=True)
            cfg = os.path.join(d, "venue.toml")
            with open(fleet["config"]) as fh:
                blocks = fh.read()
            with open(cfg, "w") as fh:
                fh.write('[venue]\nid = "bench"\nname = "Bench"\n' + blocks)
            from edge_agent.store.writer import ensure_store

            db = os.path.join(d, "beerflow.db")
            ensure_store(db)
            env = {**os.environ, **fleet["env"]}
            agent = subprocess.Popen(
                [py, "-m", "beerflow_edge", "run", "--config", cfg, "--log-level", "WARNING"],
                cwd=ROOT,
                env=env,
            )
            base = subprocess.Popen([py, "-c", BASELINE_MIXED], cwd=ROOT)
            time.sleep(warmup)  # start-up, OPC-UA sessions, first polls and adverts
            assert agent.poll() is None, "the agent exited during the warm-up"
            sock = os.path.join(d, "api.sock")
            before = api_json(sock, "/health")["store"]["readings_accepted"]
            ap_, bp, sp = (psutil.Process(p.pid) for p in (agent, base, sims))
            b0, s0, t0, wall0 = (
                sum(bp.cpu_times()[:2]),
                _tree_cpu(sp),
                time.monotonic(),
                time.time(),
            )
            spy = _start_py_spy(agent.pid, args.window, args.py_spy) if args.py_spy else None
            cpu, peak, rss = measure(ap_, args.window)
            elapsed = time.monotonic() - t0
            if spy is not None:
                spy.wait(30)
            b_cpu = 100 * (sum(bp.cpu_times()[:2]) - b0) / elapsed
            s_cpu = 100 * (_tree_cpu(sp) - s0) / elapsed
            wall1 = time.time()
            after = api_json(sock, "/health")
            devices = api_json(sock, "/devices")["devices"]
            threads, fds = ap_.num_threads(), ap_.num_fds()
            b_rss = bp.memory_info().rss / 1e6
            rate = (after["store"]["readings_accepted"] - before) / elapsed
            time.sleep(1.5)  # let the group commit catch up before counting rows
            per_device = _readings_by_device(db, wall0, wall1)
        finally:
            _stop(agent)
            _stop(base)
            _stop(sims, group=True)
    transports = sorted({str(x.get("transport", "?")) for x in devices})
    connected = {
        t: f"{sum(1 for x in devices if x.get('transport') == t and x.get('connected'))}"
        f"/{sum(1 for x in devices if x.get('transport') == t)}"
        for t in transports
    }
    per_transport = {
        t: round(
            sum(per_device.get(x["id"], 0) for x in devices if x.get("transport") == t)
            / (wall1 - wall0),
            1,
        )
        for t in transports
    }
    figures = {
        "devices": len(devices),
        "devices_connected": after["devices"]["connected"],
        "connected_by_transport": connected,
        "poll_interval_s": args.poll,
        "opcua_security": args.opcua_security,
        "window_s": args.window,
        "agent_cpu_pct_of_core": round(cpu, 3),
        "agent_rss_mb": round(rss, 1),
        "agent_rss_peak_mb": round(peak, 1),
        "agent_threads": threads,
        "agent_fds": fds,
        "baseline_rss_mb": round(b_rss, 1),
        "rss_ratio_to_baseline": round(rss / b_rss, 2),
        "baseline_cpu_pct_of_core": round(b_cpu, 3),
        "readings_per_s_stored": round(rate, 1),
        "readings_per_s_by_transport": per_transport,
        "simulators_cpu_pct_of_core": round(s_cpu, 1),
    }
    report(
        f"footprint: agent with {len(devices)} mixed simulated devices",
        figures,
        [
            "targets (200 mixed devices): RSS <= 80 MB, CPU <= 2 % of a core",
            "simulators (mixed_fleet.py and its peers) are excluded; their CPU is for context",
        ],
    )


if __name__ == "__main__":
    main()
