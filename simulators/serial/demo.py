"""The serial part of the demo venue: a kitchen bench scale and a keg scale, each on its own
socat pty pair, with a little life in them (things put on and taken off, pints poured)."""

from __future__ import annotations

import asyncio
import contextlib
import random

from edge_agent.clock import Clock
from simulators.demo_part import DemoPart
from simulators.serial.mtsics_scale import FakeScale, PtyPair
from simulators.serial.scale_model import KegModel, ScaleModel


async def _kitchen_life(bench: ScaleModel, keg: KegModel, clock: Clock, seed: int) -> None:
    rng = random.Random(seed)
    while True:
        await clock.sleep(rng.uniform(20, 60))
        now = clock.time()
        if bench.load_at(now) > 0.05:
            bench.ramp_to(0.0, now, 0.0)
        else:
            bench.place(round(rng.uniform(0.1, 2.5), 3), now)
        if keg.litres_at(now) > 0.6:
            keg.pour(0.568, now, rng.uniform(4, 8))  # a pint


async def demo_part(workdir: str, clock: Clock) -> DemoPart:
    ptys = [PtyPair(workdir, "bench-scale"), PtyPair(workdir, "keg-scale")]
    fakes: list[FakeScale] = []
    life: asyncio.Task[None] | None = None
    try:
        for p in ptys:
            await p.start()
        now = clock.time()
        bench = ScaleModel(seed=1, start=now)
        keg = KegModel(seed=2, start=now, litres=42.0)
        fakes = [
            FakeScale(bench, clock, ptys[0].device_path),
            FakeScale(keg, clock, ptys[1].device_path, decimals=2, identity="KegPlatform 150"),
        ]
        for f in fakes:
            await f.start()
        life = asyncio.create_task(_kitchen_life(bench, keg, clock, 7), name="sim:scale-life")
    except BaseException:
        for p in ptys:
            await p.stop()
        raise

    async def stop() -> None:
        if life is not None:
            life.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await life
        for f in fakes:
            await f.stop()
        for p in ptys:
            await p.stop()

    toml = f"""
[[buses]]
id = "bench-scale-line"
type = "rs232"
port = "{ptys[0].host_path}"
baudrate = 9600

[[buses]]
id = "keg-scale-line"
type = "rs232"
port = "{ptys[1].host_path}"
baudrate = 9600

[[devices]]
id = "bench-scale"
profile = "mettler-toledo-mtsics"
label = "Pastry bench scale"
zone = "kitchen"
bus = "bench-scale-line"
poll_interval_s = 1.0

[[devices]]
id = "keg-lager-1"
profile = "keg-scale-mtsics"
label = "Lager keg 1"
zone = "cellar"
bus = "keg-scale-line"
poll_interval_s = 2.0
"""
    return DemoPart(toml, stop, "a bench scale and a keg scale speaking MT-SICS over pty pairs")
