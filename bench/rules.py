"""Reading → action latency through the real rules service with 1,000 active rules.

Readings are published on the bus at a paced rate (default 10,000/s, in 1 ms slices) while the
store writer consumes the same bus, as in the agent. 1,000 threshold rules watch 1,000 points;
about 1 % of readings cross a limit, each crossing fires a device command, the next reading
of that point clears it (durable state is committed for both). Latency is from the publish
of the crossing reading to the command arriving at a bus subscriber (the command router's
seat). Also: the engine alone (no bus, no store), readings/s on one core.

    .venv/bin/python bench/rules.py [--rate 10000] [--seconds 5] [--rules 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import median, percentile, report
from edge_agent.bus import Bus, Overflow
from edge_agent.clock import SystemClock
from edge_agent.messages import Command, Reading
from edge_agent.store.writer import StoreWriter
from rules.actions import CommandAction
from rules.engine import RuleEngine
from rules.model import Rule, RuleFile, Trigger
from rules.service import RulesService


def make_rules(n: int) -> list[Rule]:
    return [
        Rule(
            f"r{i}",
            Trigger("threshold", f"dev-{i:04d}", "temp", above=5.0, clear=4.0, for_s=0),
            (CommandAction(device=f"plug-{i:04d}", command="switch_on"),),
        )
        for i in range(n)
    ]


def engine_only(rules: list[Rule], n: int) -> float:
    e = RuleEngine(rules)
    rng = random.Random(1)
    rs = [
        Reading(f"dev-{rng.randrange(len(rules)):04d}", "temp", 3.0 + rng.random() * 3, 0.0)
        for _ in range(n)
    ]
    t0 = time.perf_counter()
    now = 1e9
    for r in rs:
        now += 1e-4
        e.on_reading(r, now)
    return n / (time.perf_counter() - t0)


async def service_run(rules: list[Rule], rate: int, seconds: float) -> dict[str, float]:
    d = tempfile.mkdtemp(prefix="bench-rules-")
    clock = SystemClock()
    bus = Bus()
    writer = StoreWriter(os.path.join(d, "s.db"), clock=clock)
    writer.attach(bus)
    await writer.open()
    svc = RulesService(bus, writer, clock, RuleFile(tuple(rules)))
    sub = bus.subscribe("bench-commands", (Command,), 100_000, Overflow.BLOCK)
    sent: dict[str, float] = {}
    lat: list[float] = []

    async def collect() -> None:
        while True:
            for c in await sub.channel.get_batch(1000):
                t = time.perf_counter()
                lat.append(t - sent.pop(c.device_id.replace("plug", "dev"), t))

    tasks = [asyncio.create_task(x) for x in (writer.run(), svc.run(), collect())]
    await svc.ready.wait()
    rng = random.Random(7)
    n_rules = len(rules)
    active: set[int] = set()
    slice_s = 0.001
    per_slice = max(1, round(rate * slice_s))
    total = int(rate * seconds)
    published = 0
    max_queue = 0
    start = time.perf_counter()
    while published < total:
        batch = []
        now = time.time()
        for _ in range(per_slice):
            i = rng.randrange(n_rules)
            dev = f"dev-{i:04d}"
            if i in active:
                v = 3.0
                active.discard(i)
            elif rng.random() < 0.01 and dev not in sent:
                v = 7.0
                active.add(i)
            else:
                v = 3.0 + rng.random()
            batch.append(Reading(dev, "temp", v, now))
        t_pub = time.perf_counter()
        for r in batch:
            if r.value == 7.0:
                sent[r.device_id] = t_pub
        await bus.publish_many(batch)
        published += len(batch)
        max_queue = max(max_queue, len(svc.sub.channel))
        # pace to the target rate (catch up if behind, never burst more than one slice)
        target = start + published / rate
        delay = target - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.2)
    await svc.stop()
    for t in tasks[1:]:
        t.cancel()
    await asyncio.gather(*tasks[1:], return_exceptions=True)
    await writer.stop()
    await asyncio.gather(tasks[0], return_exceptions=True)
    return {
        "achieved_rate": published / elapsed,
        "actions": len(lat),
        "p50_ms": median(lat) * 1000 if lat else float("nan"),
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat) * 1000 if lat else float("nan"),
        "max_queue": max_queue,
        "batches": svc.batches,
        "stored": writer.stats.readings,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rules", type=int, default=1000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rules = make_rules(args.rules)
    eng = engine_only(rules, 200_000)
    res = asyncio.run(service_run(rules, args.rate, args.seconds))
    report(
        f"rules: reading → command latency, {args.rules} rules, {args.rate} readings/s",
        {
            "rules": args.rules,
            "target_rate": args.rate,
            "achieved_rate": round(res["achieved_rate"]),
            "actions_fired": res["actions"],
            "latency_p50_ms": round(res["p50_ms"], 3),
            "latency_p99_ms": round(res["p99_ms"], 3),
            "latency_max_ms": round(res["max_ms"], 3),
            "p99_target_ms": 2.0,
            "max_rules_queue": res["max_queue"],
            "service_batches": res["batches"],
            "readings_stored": res["stored"],
            "engine_only_readings_per_s": round(eng),
        },
        [
            "latency is publish → command on the bus; durable state commits are pipelined",
            "the store writer consumes the same readings in the same process",
        ],
    )


if __name__ == "__main__":
    main()
