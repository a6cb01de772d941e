"""kill -9 of a real agent at random instants while devices publish bursts over MQTT.

A publisher process sends QoS 1 messages in bursts (each numbered: message k carries
`temperature = k` for device k % D, no device time, so every reading is stamped on arrival and
only the driver's receipts can tell a redelivery from a new message) to a private Mosquitto.
The agent (`python -m beerflow_edge run`, the real CLI) is started, killed with SIGKILL at a
random instant once it is storing, and started again, `--kills` times. Then the publisher stops
(every message it sent acknowledged by the broker), the agent runs once more until the broker
has delivered everything, and the store is checked:

* acknowledged but lost: a message the broker no longer holds for the box (the box
  acknowledged it) whose reading is not in the store — goal 0;
* duplicates: a message whose reading is stored more than once — goal 0.

    .venv/bin/python bench/mqtt_kill.py [--kills 50] [--devices 20] [--burst 1000] [--pause 0.5]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench._common import report
from drivers.mqtt.broker import Mosquitto

CLIENT_ID = "beerflow-kill-bench"


def publisher(port: int, devices: int, burst: int, pause_s: float, seed: int) -> None:
    """Child process: bursts of QoS 1 messages until SIGTERM, then wait for every PUBACK and
    print `PUBLISHED n` (messages 0..n-1 are at the broker)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"kill-pub-{os.getpid()}")
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    rng = random.Random(seed)
    k = 0
    infos: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()
    while not stop["now"]:
        for _ in range(rng.randrange(burst // 2, burst + 1)):
            payload = json.dumps({"temperature": k, "battery": k % 100})
            infos.append(c.publish(f"sensors/kill-{k % devices:03d}/state", payload, qos=1))
            k += 1
        # paho has 65,535 message ids: keep what the broker has not acknowledged well below.
        while infos and (infos[0].is_published() or len(infos) > 20_000):
            infos[0].wait_for_publish(120)
            if not infos[0].is_published():
                raise SystemExit(f"message {infos[0].mid} not acknowledged by the broker")
            infos.popleft()
        time.sleep(pause_s * rng.uniform(0.5, 1.5))
    for info in infos:
        info.wait_for_publish(120)
        if not info.is_published():
            raise SystemExit(f"message {info.mid} not acknowledged by the broker")
    c.disconnect()
    c.loop_stop()
    print(f"PUBLISHED {k}", flush=True)


def prime_session(port: int, devices: int) -> None:
    """Open the box's persistent session and its subscription before anything is published,
    as a box that has run before has (otherwise the first burst has nobody to queue for)."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, protocol=mqtt.MQTTv5)
    c.on_subscribe = lambda *_: done.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0xFFFFFFFF
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    # The very topics the agent subscribes to (an overlapping wildcard would be a second
    # subscription, and the broker would deliver every message twice).
    c.subscribe([(f"sensors/kill-{d:03d}/state", 1) for d in range(devices)])
    if not done.wait(10):
        raise RuntimeError("could not subscribe")
    c.disconnect()
    c.loop_stop()


def venue(workdir: Path, port: int, devices: int) -> Path:
    text = (
        '[venue]\nid = "kill-bench"\nname = "Kill bench"\ntimezone = "Europe/London"\n'
        f'[storage]\npath = "{workdir / "store.db"}"\ntelemetry_sync = "normal"\n'
        f'[api]\nsocket = "{workdir / "api.sock"}"\n'
        f'[[brokers]]\nid = "b"\nport = {port}\nclient_id = "{CLIENT_ID}"\nkeepalive_s = 10\n'
    )
    for d in range(devices):
        text += (
            f'[[devices]]\nid = "kill-{d:03d}"\nprofile = "generic-json-sensor"\n'
            f'broker = "b"\naddress = "kill-{d:03d}"\n'
        )
    path = workdir / "venue.toml"
    path.write_text(text)
    return path


def query(db: Path, sql: str) -> Any:
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # not migrated yet
        return None
    finally:
        conn.close()


def stored_rows(db: Path) -> int:
    return int(query(db, "SELECT max(rowid) FROM readings") or 0)


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "beerflow_edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def wait_storing(db: Path, before: int, proc: subprocess.Popen[bytes], limit_s: float) -> bool:
    """Until the agent has committed something new (it is ingesting), bounded."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited with {proc.returncode}")
        if stored_rows(db) > before:
            return True
        time.sleep(0.02)
    return False


def run(
    workdir: Path,
    kills: int,
    devices: int = 20,
    burst: int = 1000,
    pause_s: float = 0.5,
    seed: int = 1,
    max_delay_s: float = 0.8,
) -> dict[str, Any]:
    rng = random.Random(seed)
    broker = Mosquitto(workdir / "broker")
    broker.start()
    pub: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    log = workdir / "agent.log"
    try:
        config = venue(workdir, broker.port, devices)
        db = workdir / "store.db"
        # From here on the broker keeps everything for the box while it is down.
        prime_session(broker.port, devices)
        pub = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--publish",
                str(broker.port),
                "--devices",
                str(devices),
                "--burst",
                str(burst),
                "--pause",
                str(pause_s),
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
        )
        t0 = time.monotonic()
        done = 0
        idle = 0
        while done < kills:
            if agent is None:
                agent = start_agent(config, log)
            if not wait_storing(db, stored_rows(db), agent, 60):
                idle += 1  # nothing to store (between bursts): kill it anyway
            time.sleep(rng.uniform(0.0, max_delay_s))  # a random instant mid-ingest
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            agent = None
            done += 1
        pub.send_signal(signal.SIGTERM)
        out, _ = pub.communicate(timeout=300)
        published = int(out.split()[-1])
        pub = None
        # The last run: until every message is stored, or nothing new arrives for 15 s.
        agent = start_agent(config, log)
        last, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < 15:
            n = int(
                query(
                    db,
                    "SELECT count(DISTINCT value) FROM readings r JOIN series s "
                    "ON s.id = r.series_id WHERE s.point = 'temperature'",
                )
                or 0
            )
            if n >= published:
                break
            if n != last:
                last, last_change = n, time.monotonic()
            time.sleep(0.1)
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        agent = None
        wall = time.monotonic() - t0
        conn = sqlite3.connect(db)
        try:
            rows, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT value) FROM readings r JOIN series s "
                "ON s.id = r.series_id WHERE s.point = 'temperature'"
            ).fetchone()
            outside = conn.execute(
                "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id "
                "WHERE s.point = 'temperature' AND (value < 0 OR value >= ?)",
                (published,),
            ).fetchone()[0]
            receipts = conn.execute("SELECT count(*) FROM mqtt_receipts").fetchone()[0]
        finally:
            conn.close()
        return {
            "kills": done,
            "kills_between_bursts": idle,
            "messages_published": published,
            "messages_stored": distinct,
            "acknowledged_but_lost": published - distinct,
            "duplicates": rows - distinct,
            "unknown_values": outside,
            "receipts": receipts,
            "wall_s": round(wall, 1),
            "messages_per_s": round(published / wall),
        }
    finally:
        for p in (agent, pub):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--burst", type=int, default=1000, help="messages per burst (at most)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between bursts (mean)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--publish", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publisher(args.publish, args.devices, args.burst, args.pause, args.seed)
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        figures = run(Path(d), args.kills, args.devices, args.burst, args.pause, args.seed)
    report(
        "mqtt kill -9: acknowledged means committed",
        figures,
        [
            "goal: acknowledged_but_lost 0 and duplicates 0 over >= 50 kills at random instants",
            "the agent is the real CLI; readings carry no device time (receipts dedupe)",
        ],
    )


if __name__ == "__main__":
    main()
