"""A plug's load from real kitchen-appliance power traces (Tracebase, 1-minute means).

Deterministic: the seed picks the starting minute; power follows the trace while the relay is
on, energy integrates it, voltage wanders a little around 230 V.
"""

from __future__ import annotations

import csv
import functools
import math
import random
from pathlib import Path

TRACE = Path("/work/shared/data/tracebase-fridge-kitchen/kitchen_appliances_1min.csv")
MAX_MINUTES = 7 * 24 * 60


@functools.lru_cache(maxsize=8)
def load_trace(appliance: str) -> tuple[float, ...]:
    """One appliance's minute means (W); a synthetic duty cycle when the data set is absent."""
    out: list[float] = []
    if TRACE.exists():
        with TRACE.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["appliance"] == appliance:
                    out.append(float(row["power_w_mean"]))
                    if len(out) >= MAX_MINUTES:
                        break
                elif out:
                    break  # rows of one appliance are contiguous
    if not out:
        out = [1800.0 if (m % 30) < 4 else 2.0 for m in range(24 * 60)]
    return tuple(out)


class PlugModel:
    def __init__(self, start: float, seed: int = 0, appliance: str = "Coffeemaker") -> None:
        self.trace = load_trace(appliance)
        self.rng = random.Random(seed)
        self.offset = self.rng.randrange(len(self.trace))
        self.on = True
        self.t = start
        self.energy_wh = 100.0 + self.rng.random() * 500
        self.voltage = 230.0

    def load_w(self, t: float) -> float:
        if not self.on:
            return 0.0
        return self.trace[(int(t // 60) + self.offset) % len(self.trace)]

    def advance_to(self, t: float) -> None:
        if t > self.t:
            self.energy_wh += self.load_w(self.t) * (t - self.t) / 3600
            self.t = t
        self.voltage = round(230.0 + self.rng.uniform(-2.5, 2.5), 1)

    @property
    def power(self) -> float:
        return round(self.load_w(self.t), 1)

    @property
    def current(self) -> float:
        return round(self.power / self.voltage, 3)

    @property
    def temperature(self) -> float:
        return round(28.0 + 10 * math.tanh(self.power / 1500), 1)
