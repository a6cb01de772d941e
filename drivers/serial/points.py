"""Pure fan-out of one scale reply to a profile's points (weight, flags, litres left in a keg).

No I/O: a reply and the previous weight in, readings and the load state out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from drivers.errors import CodecError
from drivers.serial.mtsics import OutOfRange, Weight
from edge_agent.messages import Quality, Reading, Value
from firmware_profiles.sections.serial import MASS_UNITS, KegParameters, SerialSection

LoadState = Literal["normal", "overload", "underload"]


@dataclass(frozen=True, slots=True)
class Keg:
    """The keg on a platform: its empty weight and what its beer weighs per litre."""

    tare_kg: float
    density_kg_per_l: float
    capacity_l: float | None
    pour_threshold_kg: float

    def litres(self, gross_kg: float) -> float:
        """Beer left; never negative (an empty keg on a drifting load cell reads a hair under
        its tare), never above capacity (a keg heavier than stamped is still full)."""
        litres = max(0.0, (gross_kg - self.tare_kg) / self.density_kg_per_l)
        return min(litres, self.capacity_l) if self.capacity_l is not None else litres


def keg_for(defaults: KegParameters | None, params: Mapping[str, float]) -> Keg | None:
    """The profile's keg defaults with the device's own parameters laid over them."""
    if defaults is None:
        return None
    capacity = params.get("capacity_l", defaults.capacity_l)
    return Keg(
        tare_kg=float(params.get("keg_tare_kg", defaults.keg_tare_kg)),
        density_kg_per_l=float(params.get("density_kg_per_l", defaults.density_kg_per_l)),
        capacity_l=float(capacity) if capacity is not None else None,
        pour_threshold_kg=defaults.pour_threshold_kg,
    )


def resolution_decimals(decimals: int, unit: str, target: str) -> int:
    """Decimals that keep a value sent with `decimals` in `unit` exact to its last digit once
    converted to `target` (g → kg adds three; lb → kg adds one)."""
    try:
        factor = MASS_UNITS[unit] / MASS_UNITS[target]
    except KeyError:
        raise CodecError(f"the scale reports in {unit!r}, which is not a mass unit") from None
    step = 10.0**-decimals * factor
    return max(0, math.ceil(-math.log10(step) - 1e-9))


def weight_in(reply: Weight, target: str) -> float:
    """The reply's weight in `target`, to the scale's resolution."""
    keep = resolution_decimals(reply.decimals, reply.unit, target)
    return round(to_unit(reply.value, reply.unit, target), keep)


def to_unit(value: float, unit: str, target: str) -> float:
    if unit == target:
        return value
    try:
        return value * MASS_UNITS[unit] / MASS_UNITS[target]
    except KeyError:
        raise CodecError(f"the scale reports in {unit!r}, which is not a mass unit") from None


@dataclass(frozen=True, slots=True)
class Fanout:
    readings: list[Reading]
    load: LoadState
    weight_kg: float | None  # None while out of range


def fan_out(
    reply: Weight | OutOfRange,
    section: SerialSection,
    keg: Keg | None,
    device_id: str,
    ts: float,
    previous_kg: float | None,
) -> Fanout:
    """Readings for every point this reply says something about. A dynamic (settling) weight
    is published as UNCERTAIN; out of range publishes the flags and no weight at all."""
    if isinstance(reply, OutOfRange):
        load: LoadState = "overload" if reply.over else "underload"
        weight_kg = None
        quality = Quality.GOOD
    else:
        load = "normal"
        weight_kg = to_unit(reply.value, reply.unit, "kg")
        quality = Quality.GOOD if reply.stable else Quality.UNCERTAIN
    out: list[Reading] = []
    for p in section.points:
        value: Value
        q = quality
        if p.source == "overload":
            value = load == "overload"
        elif p.source == "underload":
            value = load == "underload"
        elif weight_kg is None:
            continue
        elif p.source == "weight":
            assert isinstance(reply, Weight)
            # The scale's own resolution, not the profile's `decimals`: never drop a digit
            # the scale displayed (the rounding only removes the conversion's float noise).
            value = weight_in(reply, p.unit)
            out.append(Reading(device_id, p.name, value, ts, p.unit, q))
            continue
        elif p.source == "stable":
            assert isinstance(reply, Weight)
            value, q = reply.stable, Quality.GOOD
        elif p.source == "litres_remaining":
            if keg is None:
                continue
            value = keg.litres(weight_kg)
        else:  # pouring
            if keg is None:
                continue
            drop = (previous_kg - weight_kg) if previous_kg is not None else 0.0
            value, q = drop >= keg.pour_threshold_kg, Quality.GOOD
        if isinstance(value, float) and p.decimals is not None:
            value = round(value, p.decimals)
        out.append(Reading(device_id, p.name, value, ts, p.unit, q))
    return Fanout(out, load, weight_kg)
