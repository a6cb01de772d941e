"""A load cell as a function of time: loads change (placed at once, or poured away over a few
seconds), the reading rings and settles, and the scale keeps its own zero and tare.

Deterministic: time comes from the caller, noise from a seeded generator.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["stable", "dynamic", "overload", "underload"]


@dataclass(frozen=True, slots=True)
class Sample:
    status: Status
    net_kg: float  # meaningless when out of range


@dataclass
class _Ramp:
    start: float
    end: float
    from_kg: float
    to_kg: float


@dataclass
class ScaleModel:
    capacity_kg: float = 6.0
    resolution_kg: float = 0.001
    settle_s: float = 1.5
    # Within +-2 % of capacity of the power-on zero, a scale accepts a zero command.
    zero_range: float = 0.02
    seed: int = 0
    start: float = 0.0
    gross_kg: float = 0.0  # what lies on the platform when the model starts
    zero_kg: float = 0.0
    tare_kg: float = 0.0
    _ramp: _Ramp | None = field(default=None, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._power_on_zero = self.zero_kg

    # --- what happens on the platform -------------------------------------------------------

    def place(self, load_kg: float, at: float) -> None:
        """Put on (or take off, negative) a load at once."""
        self.ramp_to(self.load_at(at) + load_kg, at, 0.0)

    def ramp_to(self, gross_kg: float, at: float, duration_s: float) -> None:
        self._ramp = _Ramp(at, at + duration_s, self.load_at(at), gross_kg)

    def load_at(self, at: float) -> float:
        """The true gross load on the platform (no ringing, no noise)."""
        r = self._ramp
        if r is None:
            return self.gross_kg
        if at >= r.end:
            return r.to_kg
        if at <= r.start:
            return r.from_kg
        return r.from_kg + (r.to_kg - r.from_kg) * (at - r.start) / (r.end - r.start)

    def settled_at(self) -> float:
        r = self._ramp
        return self.start if r is None else r.end + self.settle_s

    # --- what the scale shows -----------------------------------------------------------------

    def sample(self, at: float) -> Sample:
        true = self.load_at(at)
        shown = true
        dynamic = at < self.settled_at()
        r = self._ramp
        if dynamic and r is not None:
            since = max(0.0, at - r.end)
            step = r.from_kg - r.to_kg if at >= r.end else 0.0
            # a damped ring after the change plus vibration noise while it lasts
            shown += step * math.exp(-since / (self.settle_s / 4)) * math.cos(9.0 * since)
            shown += self._rng.gauss(0.0, 5 * self.resolution_kg)
        raw = shown - self.zero_kg
        if raw > self.capacity_kg + 9 * self.resolution_kg:
            return Sample("overload", 0.0)
        if raw < -self.zero_range * self.capacity_kg:
            return Sample("underload", 0.0)
        net = round((raw - self.tare_kg) / self.resolution_kg) * self.resolution_kg
        return Sample("dynamic" if dynamic else "stable", round(net, 9))

    def tare(self, at: float) -> Sample:
        """Take the current load as tare (when stable and in range); returns the tare weight."""
        s = self.sample(at)
        if s.status == "stable":
            self.tare_kg = round(self.load_at(at) - self.zero_kg, 9)
            return Sample("stable", self.tare_kg)
        return s

    def zero(self, at: float) -> Status:
        """Set zero to the current load; refused outside the zero range (returns why)."""
        s = self.sample(at)
        if s.status in ("overload", "underload", "dynamic"):
            return s.status
        offset = self.load_at(at) - self._power_on_zero
        if offset > self.zero_range * self.capacity_kg:
            return "overload"
        if offset < -self.zero_range * self.capacity_kg:
            return "underload"
        self.zero_kg = self.load_at(at)
        self.tare_kg = 0.0
        return "stable"


@dataclass
class KegModel(ScaleModel):
    """A keg platform: gross = keg tare + beer; pours take beer out over a few seconds."""

    capacity_kg: float = 150.0
    resolution_kg: float = 0.01
    settle_s: float = 2.0
    keg_tare_kg: float = 13.0
    density_kg_per_l: float = 1.01
    litres: float = 50.0

    def __post_init__(self) -> None:
        ScaleModel.__post_init__(self)
        self.gross_kg = self.keg_tare_kg + self.litres * self.density_kg_per_l

    def pour(self, litres: float, at: float, duration_s: float = 4.0) -> None:
        self.ramp_to(self.load_at(at) - litres * self.density_kg_per_l, at, duration_s)

    def litres_at(self, at: float) -> float:
        return (self.load_at(at) - self.keg_tare_kg) / self.density_kg_per_l
