"""A deterministic cabinet/cold-room model driven by an external clock.

Newtonian heat exchange between cabinet air, the evaporator, the product and the kitchen, a
thermostat with hysteresis, timed defrosts that end on evaporator temperature (with a maximum
duration), random door openings drawn from a seeded generator, and injectable faults. Same seed
and same times in → same values out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

STEP_S = 5.0


@dataclass
class FridgeParams:
    setpoint: float = 3.0
    hysteresis: float = 2.0
    ambient: float = 22.0
    leak_per_s: float = 0.0002  # cabinet ↔ kitchen
    coil_per_s: float = 0.0008  # cabinet ↔ evaporator when the fan runs
    evaporator_floor: float = -12.0
    defrost_interval_s: float = 6 * 3600
    defrost_max_s: float = 30 * 60
    defrost_end_evaporator: float = 8.0
    door_openings_per_hour: float = 3.0
    door_open_s: tuple[float, float] = (10.0, 60.0)
    high_alarm_offset: float = 8.0


@dataclass
class FridgeState:
    room: float
    evaporator: float
    product: float
    compressor_on: bool = False
    fan_on: bool = True
    defrost_active: bool = False
    door_open: bool = False
    alarm: bool = False


class FridgeModel:
    def __init__(self, start: float, seed: int = 0, params: FridgeParams | None = None) -> None:
        self.p = params or FridgeParams()
        self.rng = random.Random(seed)
        sp = self.p.setpoint
        self.state = FridgeState(room=sp + 1.0, evaporator=sp - 2.0, product=sp + 0.5)
        self.t = start
        # Stagger defrosts between cabinets the way installers do.
        self._next_defrost = start + self.rng.uniform(0.2, 1.0) * self.p.defrost_interval_s
        self._defrost_started = 0.0
        self._door_until = 0.0
        self.compressor_dead = False
        self.defrost_stuck = False
        self.door_stuck_open = False

    @property
    def setpoint(self) -> float:
        return self.p.setpoint

    def set_setpoint(self, value: float) -> None:
        self.p.setpoint = value

    def advance_to(self, t: float) -> FridgeState:
        while self.t + STEP_S <= t:
            self._step(STEP_S)
        return self.state

    def _step(self, dt: float) -> None:
        p, s = self.p, self.state
        self.t += dt
        now = self.t
        # doors
        if self.door_stuck_open:
            s.door_open = True
        elif s.door_open and now >= self._door_until:
            s.door_open = False
        elif not s.door_open and self.rng.random() < p.door_openings_per_hour * dt / 3600:
            s.door_open = True
            self._door_until = now + self.rng.uniform(*p.door_open_s)
        # defrost
        if not s.defrost_active and now >= self._next_defrost:
            s.defrost_active = True
            self._defrost_started = now
        if s.defrost_active:
            done = s.evaporator >= p.defrost_end_evaporator or (
                now - self._defrost_started >= p.defrost_max_s
            )
            if done and not self.defrost_stuck:
                s.defrost_active = False
                self._next_defrost = now + p.defrost_interval_s
        # thermostat (cut in at SET+Hy, cut out at SET)
        if s.defrost_active:
            s.compressor_on = False
        elif s.room >= p.setpoint + p.hysteresis:
            s.compressor_on = True
        elif s.room <= p.setpoint:
            s.compressor_on = False
        s.fan_on = not s.defrost_active
        cooling = s.compressor_on and not self.compressor_dead
        # evaporator
        if s.defrost_active:
            s.evaporator += 0.012 * dt  # heater: ~0.7 °C/min
        elif cooling:
            s.evaporator += (p.evaporator_floor - s.evaporator) * dt / 90
        else:
            s.evaporator += (s.room - s.evaporator) * dt / 300
        # cabinet air
        leak = p.leak_per_s * (12 if s.door_open else 1)
        s.room += (p.ambient - s.room) * leak * dt
        if s.fan_on:
            s.room += (s.evaporator - s.room) * p.coil_per_s * dt
        elif s.defrost_active:
            s.room += (s.evaporator - s.room) * p.coil_per_s * 0.3 * dt
        s.product += (s.room - s.product) * dt / 1800
        s.alarm = s.room >= p.setpoint + p.high_alarm_offset
