"""RSS and CPU of the agent polling N simulated Modbus devices, simulators excluded.

The simulators run in their own process; the agent is a real `beerflow-edge run` process. After
a warm-up, CPU time is measured over a window (default 60 s) and RSS sampled every second.
The store is created before the agent starts, as on any box after its first boot (the first
start also runs the schema migrations, which load sqlite-utils). The baseline, measured in the
same run, is a bare Python process importing the same runtime
modules and idling in asyncio: what the interpreter costs before the agent does anything.

    .venv/bin/python bench/footprint.py [--devices 100] [--poll 5] [--window 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench._common import report

BASELINE = (
    "import asyncio, aiohttp, pymodbus.client, prometheus_client, sqlite3, edge_agent.agent\n"
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


def api_json(sock: str, path: str) -> dict:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(sock)

    c = Conn("agent", timeout=5)
    c.request("GET", urllib.parse.quote(path, safe="/?=&"))
    return json.loads(c.getresponse().read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--poll", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=12.0)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        sims = subprocess.Popen(
            [py, "-m", "edge_agent", "simulate", "--count", str(args.devices), "--base-port", "0"],
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
                [py, "-m", "edge_agent", "run", "--config", cfg, "--log-level", "WARNING"],
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


if __name__ == "__main__":
    main()
