"""The Dixell XR77U/XR60CX register map as a MapSlave, so the controller can sit on an RTU line
(the pymodbus-based FridgeSimulator serves the same map over TCP)."""

from __future__ import annotations

from drivers.modbus import frames
from edge_agent.clock import Clock
from simulators.modbus.dixell_server import (
    _COILS,
    _PARAM_BASE,
    _PARAM_COUNT,
    _SETPOINT,
    Variant,
    _from_s16,
    _s16,
)
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.slave import MapSlave, SlaveException, Table


class DixellSlave(MapSlave):
    def __init__(self, model: FridgeModel, clock: Clock, variant: Variant = "xr77u") -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        self.variant = variant
        self.define("holding", 256, 8)
        self.define("holding", _PARAM_BASE, _PARAM_COUNT)
        self.define("coil", 512, 64)
        self.define("discrete", 0, 16)

    def refresh(self) -> None:
        st = self.model.advance_to(self.clock.time())
        hr = self.spaces["holding"]
        hr[256], hr[257], hr[258] = _s16(st.room), _s16(st.evaporator), _s16(st.product)
        hr[_SETPOINT[self.variant]] = _s16(self.model.setpoint)
        states = {
            "defrost_active": st.defrost_active,
            "fan_on": st.fan_on,
            "compressor_on": st.compressor_on,
            "alarm": st.alarm,
            "running": True,
        }
        for name, addr in _COILS[self.variant].items():
            self.spaces["coil"][addr] = int(states[name])

    def on_write(self, table: Table, address: int, values: tuple[int, ...]) -> None:
        sp = _SETPOINT[self.variant]
        if table == "holding" and address <= sp < address + len(values):
            value = _from_s16(values[sp - address])
            if not -50 <= value <= 50:
                raise SlaveException(frames.EXC_ILLEGAL_VALUE)
            self.model.set_setpoint(value)
        super().on_write(table, address, values)
