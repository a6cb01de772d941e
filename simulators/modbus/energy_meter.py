"""An Eastron SDM120/SDM630-style energy meter: float32 input registers (big-endian words),
live values from a power trace (a recorded TraceBase fridge by default, or a synthetic
compressor cycle), energy integrated over the injected clock. Same seed, trace and times in →
same registers out."""

from __future__ import annotations

import csv
import random
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from edge_agent.clock import Clock
from simulators.modbus.slave import MapSlave

MeterModel = Literal["sdm120", "sdm630"]
TRACE_DIR = Path("/work/shared/data/tracebase-fridge-kitchen")
STEP_S = 10.0

# Standard SDM input-register addresses (0-based protocol addresses, float32 each).
VOLTAGE, CURRENT, POWER, APPARENT, REACTIVE, PF = 0, 6, 12, 18, 24, 30
TOTAL_POWER, FREQUENCY, IMPORT_KWH, EXPORT_KWH, TOTAL_KWH = 52, 70, 72, 74, 342


def load_trace(path: str | Path) -> list[float]:
    """`power_w_mean` column of a TraceBase CSV (timestamp,power_w_mean,power_w_max,n_samples)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [float(row["power_w_mean"]) for row in csv.DictReader(f)]


def synthetic_trace(seed: int, steps: int = 2160) -> list[float]:
    """Six hours of a compressor cycling: ~15 min at ~110 W, ~20 min idle at ~2 W."""
    rng = random.Random(seed)
    out: list[float] = []
    while len(out) < steps:
        on = rng.randint(70, 110)
        out += [rng.uniform(100, 125) for _ in range(on)]
        out += [rng.uniform(1, 3) for _ in range(rng.randint(100, 140))]
    return out[:steps]


def _f32(v: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return hi, lo


class EnergyMeterSlave(MapSlave):
    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        model: MeterModel = "sdm120",
        trace: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.seed = seed
        self.model = model
        self.trace = list(trace) if trace is not None else synthetic_trace(seed)
        if not self.trace:
            raise ValueError("empty power trace")
        self.t0 = self.t = clock.time()
        self.energy_kwh = 1000.0 + random.Random(seed).uniform(0, 500)
        # The SDM120 has no three-phase block (30053 and up): asking for it is an exception.
        self.define("input", 0, 32)
        self.define("input", 70, 10)
        if model == "sdm630":
            self.define("input", 32, 38)
            self.define("input", 200, 40)
        self.define("input", 340, 8)
        self.define("holding", 0, 30)  # configuration registers (not modelled)

    def power_at(self, t: float) -> float:
        return self.trace[int((t - self.t0) // STEP_S) % len(self.trace)]

    def advance_to(self, t: float) -> None:
        while self.t + STEP_S <= t:
            self.energy_kwh += self.power_at(self.t) * STEP_S / 3_600_000
            self.t += STEP_S

    def refresh(self) -> None:
        now = self.clock.time()
        self.advance_to(now)
        rng = random.Random(self.seed * 1_000_003 + int(now))
        p = self.power_at(now)
        v = 230.0 + rng.uniform(-3, 3)
        pf = 0.9 + rng.uniform(-0.04, 0.04) if p > 20 else 1.0
        s = p / pf
        values = {
            VOLTAGE: v,
            CURRENT: s / v,
            POWER: p,
            APPARENT: s,
            REACTIVE: (max(s * s - p * p, 0.0)) ** 0.5,
            PF: pf,
            FREQUENCY: 50.0 + rng.uniform(-0.05, 0.05),
            IMPORT_KWH: self.energy_kwh,
            EXPORT_KWH: 0.0,
            TOTAL_KWH: self.energy_kwh,
        }
        if self.model == "sdm630":
            # Single-phase load on L1 of a three-phase meter.
            values.update({2: v + 0.4, 4: v - 0.6, 8: 0.0, 10: 0.0, 14: 0.0, 16: 0.0})
            values[TOTAL_POWER] = p
        ir = self.spaces["input"]
        for addr, val in values.items():
            ir[addr], ir[addr + 1] = _f32(val)
