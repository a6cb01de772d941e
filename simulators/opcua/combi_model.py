"""A deterministic combi steamer driven by an external clock.

Preheat to the set temperature, then a program with a remaining time; the core probe follows the
chamber temperature slowly (first order); door openings (random, from a seeded generator, only
while cooking) pull the chamber towards the kitchen's temperature; an idle oven drops into energy
saving. Same seed and same times in → same values out. Modes follow OPC 30200's
CombiSteamerMode enumeration.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

STEP_S = 1.0


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1
    PREHEAT = 2
    STANDBY = 3
    STEAMING = 4
    COMBI_STEAMING = 5
    HOT_AIR = 6
    PERFECTION = 7
    CLEANING = 8
    PRESET_START = 9
    ERROR = 10


COOKING = frozenset({Mode.STEAMING, Mode.COMBI_STEAMING, Mode.HOT_AIR, Mode.PERFECTION})
HUMIDITY = {Mode.STEAMING: 100.0, Mode.COMBI_STEAMING: 60.0, Mode.PERFECTION: 45.0}


@dataclass
class CombiParams:
    ambient: float = 24.0
    heat_rate_c_per_s: float = 0.6  # element/generator limit
    chamber_tau_s: float = 120.0  # approach to the set temperature once near it
    cool_tau_s: float = 2400.0  # closed, idle oven
    door_tau_s: float = 45.0  # door open: the chamber dumps heat fast
    core_tau_s: float = 1500.0  # the product's core follows the chamber slowly
    preheat_margin: float = 5.0  # preheat ends within this of the set temperature
    energy_saving_after_s: float = 900.0
    door_openings_per_hour: float = 2.0
    door_open_s: tuple[float, float] = (8.0, 30.0)


@dataclass
class CombiState:
    mode: Mode = Mode.STANDBY
    chamber: float = 24.0
    set_temperature: float = 160.0
    core: float = 5.0
    core_target: float = 0.0
    humidity: float = 40.0
    door_open: bool = False
    time_remaining: int = 0
    process_time: int = 0
    energy_saving: bool = False
    program: str = ""


class CombiModel:
    def __init__(self, start: float, seed: int = 0, params: CombiParams | None = None) -> None:
        self.p = params or CombiParams()
        self.rng = random.Random(seed)
        self.state = CombiState(chamber=self.p.ambient)
        self.t = start
        self._idle_since = start
        self._door_until = 0.0
        self._cook_mode = Mode.HOT_AIR
        self._remaining_f = 0.0
        self.random_doors = True

    # ---- what the outside world does to the oven -------------------------------------------

    def start_program(
        self, name: str, mode: Mode, temperature: float, duration_s: int, core_target: float
    ) -> None:
        if mode not in COOKING:
            raise ValueError(f"{mode!r} is not a cooking mode")
        st = self.state
        st.program = name
        st.set_temperature = temperature
        st.core_target = core_target
        st.process_time = duration_s
        st.time_remaining = duration_s
        self._remaining_f = float(duration_s)
        self._cook_mode = mode
        st.energy_saving = False
        st.core = self.p.ambient - 15.0  # a fresh tray from the fridge
        st.mode = Mode.PREHEAT

    def set_temperature(self, value: float) -> None:
        self.state.set_temperature = value

    def open_door(self, seconds: float) -> None:
        self.state.door_open = True
        self._door_until = max(self._door_until, self.t + seconds)

    def fail(self) -> None:
        self.state.mode = Mode.ERROR

    # ---- time --------------------------------------------------------------------------------

    def advance_to(self, t: float) -> CombiState:
        while self.t + STEP_S <= t:
            self.t += STEP_S
            self._step(STEP_S)
        return self.state

    def _step(self, dt: float) -> None:
        st, p = self.state, self.p
        self._doors(dt)
        heating = st.mode == Mode.PREHEAT or st.mode in COOKING
        if st.door_open:
            target, tau = p.ambient, p.door_tau_s
        elif heating:
            target, tau = st.set_temperature, p.chamber_tau_s
        else:
            target, tau = p.ambient, p.cool_tau_s
        delta = (target - st.chamber) * (1 - math.exp(-dt / tau))
        if heating and not st.door_open:
            delta = min(delta, p.heat_rate_c_per_s * dt)
        st.chamber += delta
        st.humidity += (HUMIDITY.get(st.mode, 40.0) - st.humidity) * (1 - math.exp(-dt / 60.0))
        if st.mode in COOKING:
            st.core += (st.chamber - st.core) * (1 - math.exp(-dt / p.core_tau_s))
        if st.mode == Mode.PREHEAT and st.chamber >= st.set_temperature - p.preheat_margin:
            st.mode = self._cook_mode
        elif st.mode in COOKING:
            self._remaining_f = max(0.0, self._remaining_f - dt)
            st.time_remaining = math.ceil(self._remaining_f)
            core_done = st.core_target > 0 and st.core >= st.core_target
            if st.time_remaining == 0 or core_done:
                self._finish()
        if st.mode in (Mode.STANDBY, Mode.ON) and not st.door_open:
            st.energy_saving = self.t - self._idle_since >= p.energy_saving_after_s
        else:
            st.energy_saving = False
            self._idle_since = self.t

    def _finish(self) -> None:
        st = self.state
        st.mode = Mode.STANDBY
        st.time_remaining = 0
        st.program = ""
        self._idle_since = self.t

    def _doors(self, dt: float) -> None:
        st, p = self.state, self.p
        if st.door_open and self.t >= self._door_until:
            st.door_open = False
        cooking = st.mode in COOKING
        chance = p.door_openings_per_hour * dt / 3600
        if self.random_doors and cooking and not st.door_open and self.rng.random() < chance:
            self.open_door(self.rng.uniform(*p.door_open_s))
