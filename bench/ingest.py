"""Readings/s through bus → store writer → commit, beside the raw SQLite ceiling on the same disk.

The raw ceiling is plain sqlite3 `executemany` of prebuilt tuples into the same schema, one
transaction per batch, with the same synchronous mode, at the better of 1,000- and 10,000-row
batches (the writer's own batch limit), so it is the best raw SQLite does here. Runs alternate
(raw, agent, raw, agent, …) and the medians are compared, because these machines are noisy.

    .venv/bin/python bench/ingest.py [--readings 500000] [--rounds 3] [--sync full|normal]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import median, report
from edge_agent.bus import Bus
from edge_agent.messages import Reading
from edge_agent.store.schema import connect, migrate
from edge_agent.store.writer import StoreWriter

SERIES = 100


def make_readings(n: int) -> list[Reading]:
    t0 = time.time()
    return [
        Reading(f"dev-{i % SERIES:03d}", "temp", 3.0 + (i % 50) / 10, t0 + i * 1e-4, "°C")
        for i in range(n)
    ]


def raw_ceiling(path: str, readings: list[Reading], sync: str, batch: int) -> float:
    conn = connect(path)
    migrate(conn)
    conn.execute(f"PRAGMA synchronous={sync.upper()}")
    ids = {}
    for i in range(SERIES):
        cur = conn.execute(
            "INSERT INTO series (device_id, point, unit) VALUES (?, 'temp', '°C')",
            (f"dev-{i:03d}",),
        )
        ids[f"dev-{i:03d}"] = cur.lastrowid
    rows = [(ids[r.device_id], r.ts, r.value, 0) for r in readings]  # prebuilt, not timed
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO readings (series_id, ts, value, quality) VALUES (?, ?, ?, ?)",
            rows[i : i + batch],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


async def agent_path(path: str, readings: list[Reading], sync: str) -> tuple[float, float]:
    writer = StoreWriter(path, telemetry_sync=sync)  # type: ignore[arg-type]
    bus = Bus()
    writer.attach(bus)
    await writer.open()
    task = asyncio.create_task(writer.run())
    t0 = time.perf_counter()
    for i in range(0, len(readings), 1000):
        await bus.publish_many(readings[i : i + 1000])
    await writer.flush()
    elapsed = time.perf_counter() - t0
    commits = writer.stats.commits
    await writer.stop()
    await task
    return len(readings) / elapsed, len(readings) / max(commits, 1)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sync", choices=["full", "normal"], default="full")
    args = ap.parse_args()
    readings = make_readings(args.readings)
    raw, ours, batch = [], [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        for k in range(args.rounds):
            raw.append(
                max(
                    raw_ceiling(os.path.join(d, f"raw{k}-{b}.db"), readings, args.sync, b)
                    for b in (1000, 10_000)
                )
            )
            rate, per_commit = asyncio.run(
                agent_path(os.path.join(d, f"agent{k}.db"), readings, args.sync)
            )
            ours.append(rate)
            batch.append(per_commit)
    figures = {
        "readings_per_s": round(median(ours)),
        "raw_sqlite_per_s": round(median(raw)),
        "ratio_to_raw_sqlite": round(median(ours) / median(raw), 3),
        "readings_per_commit": round(median(batch)),
        "readings": args.readings,
        "rounds": args.rounds,
        "synchronous": args.sync,
    }
    report(
        "ingest: bus -> store writer -> commit",
        figures,
        ["targets: >= 50,000 readings/s and >= 0.60 of the raw ceiling"],
    )


if __name__ == "__main__":
    main()
