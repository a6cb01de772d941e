"""MQTT ingest: 100 simulated devices → Mosquitto → MQTT driver → bus → store commit.

Beside it, in the same run, the broker path's own ceiling: a bare paho subscriber counting the
same stream. Each message carries 5 points and a sequence number; afterwards the store is
checked for readings lost, merged (two messages on one timestamp) or split (one message's
points on several timestamps). CPU is this process's (driver + store), not the publisher's or
the broker's.

    .venv/bin/python bench/mqtt.py [--devices 100] [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._common import report
from drivers.base import DriverContext
from drivers.mqtt import factory
from drivers.mqtt.broker import Mosquitto
from edge_agent.bus import Bus
from edge_agent.clock import SystemClock
from edge_agent.config.model import BrokerConfig, DeviceConfig, VenueConfig, VenueSection
from edge_agent.health import HealthRegistry
from edge_agent.store.writer import StoreWriter
from firmware_profiles.loader import load_profile

PROFILE = """id = "bench-sensor"
vendor = "Bench"
model = "5-point JSON sensor"
transport = "mqtt"
[[mqtt.topics]]
name = "state"
topic = "bench/{device}/state"
timestamp = "ts"
""" + "".join(
    f'[[mqtt.points]]\nname = "{n}"\nkind = "{k}"\nunit = "{u}"\ntopic = "state"\npath = "{n}"\n'
    for n, k, u in [
        ("seq", "counter", ""),
        ("temperature", "temperature", "°C"),
        ("humidity", "humidity", "%"),
        ("power", "power", "W"),
        ("voltage", "voltage", "V"),
    ]
)
POINTS = 5


def publisher(port: int, devices: int, messages: int) -> None:
    """Run in a child process: publish every device's messages round-robin, QoS 1."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = 1_750_000_000.0
    info = None
    for seq in range(messages):
        for d in range(devices):
            doc = {
                "ts": t0 + seq * 0.001,
                "seq": seq,
                "temperature": 3.0 + d / 100,
                "humidity": 60.0,
                "power": 120.5 + seq % 7,
                "voltage": 230.1,
            }
            info = c.publish(f"bench/dev-{d:03d}/state", json.dumps(doc), qos=1)
    assert info is not None
    info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def spawn_publisher(port: int, devices: int, messages: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--publish",
            str(port),
            "--devices",
            str(devices),
            "--messages",
            str(messages),
        ]
    )


def ceiling(port: int, devices: int, messages: int) -> tuple[float, float]:
    total = devices * messages
    done = threading.Event()
    subscribed = threading.Event()
    state = {"n": 0, "t0": 0.0, "t1": 0.0, "c0": 0.0, "c1": 0.0}

    def on_message(_c: object, _u: object, _m: object) -> None:
        state["n"] += 1
        if state["n"] == 1:
            state["t0"], state["c0"] = time.perf_counter(), time.process_time()
        if state["n"] == total:
            state["t1"], state["c1"] = time.perf_counter(), time.process_time()
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{uuid.uuid4().hex[:8]}")
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe("bench/+/state", qos=1)
    subscribed.wait(5)
    pub = spawn_publisher(port, devices, messages)
    done.wait(300)
    pub.wait(60)
    c.disconnect()
    c.loop_stop()
    points = total * POINTS
    return points / (state["t1"] - state["t0"]), (state["c1"] - state["c0"]) / points * 1e6


async def driver_path(port: int, workdir: Path, devices: int, messages: int) -> dict[str, float]:
    (workdir / "bench-sensor.toml").write_text(PROFILE)
    profile = load_profile(str(workdir / "bench-sensor.toml"))
    devs = tuple(
        DeviceConfig(id=f"dev-{d:03d}", profile="bench-sensor", address=f"dev-{d:03d}", broker="b")
        for d in range(devices)
    )
    cfg = VenueConfig(
        VenueSection("bench", "Bench"),
        brokers=(BrokerConfig("b", port=port, client_id=f"bench-{uuid.uuid4().hex[:8]}"),),
        devices=devs,
    )
    db = str(workdir / "store.db")
    writer = StoreWriter(db, telemetry_sync="normal")
    bus = Bus()
    writer.attach(bus)
    await writer.open()
    wtask = asyncio.create_task(writer.run())
    ctx = DriverContext(cfg, bus, SystemClock(), HealthRegistry())
    (svc,) = factory.build(ctx, [(d, profile) for d in devs])
    service = ctx.shared["mqtt"]["b"]

    async def run_service() -> None:
        await svc.run()

    stask = asyncio.create_task(run_service())
    # Polling counters nothing signals; the bench measures, it does not wait on events.
    while not service.link.connected:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    total = devices * messages * POINTS
    pub = spawn_publisher(port, devices, messages)
    while bus.published == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.0005)
    t0, c0 = time.perf_counter(), time.process_time()
    while bus.published < total:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    await writer.flush()
    t1, c1 = time.perf_counter(), time.process_time()
    await asyncio.to_thread(pub.wait, 60)
    stask.cancel()
    await asyncio.gather(stask, return_exceptions=True)
    await writer.stop()
    await wtask
    lost, merged, split = verify(db, devices, messages)
    malformed = sum(h.malformed for h in ctx.health.all())
    return {
        "rate": total / (t1 - t0),
        "cpu_us": (c1 - c0) / total * 1e6,
        "lost": lost,
        "merged": merged,
        "split": split,
        "malformed": malformed,
    }


def verify(db: str, devices: int, messages: int) -> tuple[int, int, int]:
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT s.device_id, r.ts, COUNT(*) FROM readings r JOIN series s ON s.id = r.series_id "
        "GROUP BY s.device_id, r.ts"
    ).fetchall()
    merged = sum(1 for _, _, n in rows if n > POINTS)  # two messages on one instant
    split = sum(1 for _, _, n in rows if n < POINTS)  # one message over several instants
    seqs = conn.execute(
        "SELECT s.device_id, r.value FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.point = 'seq'"
    ).fetchall()
    conn.close()
    seen: dict[str, list[int]] = {}
    for dev, v in seqs:
        seen.setdefault(dev, []).append(int(v))
    lost = 0
    for d in range(devices):
        got = sorted(seen.get(f"dev-{d:03d}", []))
        lost += messages - len(set(got))
        merged += len(got) - len(set(got))  # duplicates count against us too
    return lost, merged, split


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--messages", type=int, default=200, help="per device")
    ap.add_argument("--publish", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publisher(args.publish, args.devices, args.messages)
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        broker = Mosquitto(Path(d) / "broker")
        broker.start()
        try:
            ceil, ceil_cpu = ceiling(broker.port, args.devices, args.messages)
            ours = asyncio.run(driver_path(broker.port, Path(d), args.devices, args.messages))
        finally:
            broker.stop()
    figures = {
        "points_per_s": round(ours["rate"]),
        "bare_paho_points_per_s": round(ceil),
        "ratio_to_ceiling": round(ours["rate"] / ceil, 3),
        "cpu_us_per_point": round(ours["cpu_us"], 2),
        "bare_paho_cpu_us_per_point": round(ceil_cpu, 2),
        "readings_lost": int(ours["lost"]),
        "readings_merged": int(ours["merged"]),
        "readings_split": int(ours["split"]),
        "malformed": int(ours["malformed"]),
        "devices": args.devices,
        "messages": args.devices * args.messages,
        "points_per_message": POINTS,
    }
    report(
        "mqtt: mosquitto -> driver -> bus -> store commit",
        figures,
        ["targets: >= 0.70 of the bare-paho ceiling, <= 12 us CPU per point, 0 lost/merged/split"],
    )


if __name__ == "__main__":
    main()
