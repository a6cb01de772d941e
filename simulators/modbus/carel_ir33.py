"""A Carel ir33-style cabinet controller on Modbus: analogue variables (A) in holding registers
as s16 x10, integer variables (I) in holding registers at the product's offset, digital
variables (D) as coils. The refrigeration behaviour comes from FridgeModel."""

from __future__ import annotations

from drivers.modbus import frames
from edge_agent.clock import Clock
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.slave import MapSlave, SlaveException, Table

INTEGER_OFFSET = 100  # ir33+: integer variable In sits at holding register 100 + n
A_SETPOINT, A_DIFFERENTIAL, A_VIRTUAL, A_PROBE1, A_PROBE2, A_PROBE3 = 1, 2, 3, 4, 5, 6
I_STATE = 16
D_COMPRESSOR, D_DEFROST_RELAY, D_FAN = 1, 2, 3
D_LOW_ALARM, D_HIGH_ALARM, D_DEFROST, D_DOOR, D_ON = 15, 16, 31, 37, 62


def _s16(v: float) -> int:
    return round(v * 10) & 0xFFFF


def _from_s16(w: int) -> float:
    return (w - 0x10000 if w & 0x8000 else w) / 10


class CarelIr33Slave(MapSlave):
    def __init__(self, model: FridgeModel, clock: Clock) -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        self.define("holding", 1, 50)  # analogue A1..A50
        self.define("holding", INTEGER_OFFSET + 1, 50)  # integer I1..I50
        self.define("coil", 1, 64)  # digital D1..D64
        self.spaces["holding"][A_DIFFERENTIAL] = _s16(model.p.hysteresis)

    def refresh(self) -> None:
        st = self.model.advance_to(self.clock.time())
        hr, co = self.spaces["holding"], self.spaces["coil"]
        hr[A_SETPOINT] = _s16(self.model.setpoint)
        hr[A_VIRTUAL] = hr[A_PROBE1] = _s16(st.room)
        hr[A_PROBE2] = _s16(st.evaporator)
        hr[A_PROBE3] = _s16(st.product)
        hr[INTEGER_OFFSET + I_STATE] = 2 if st.defrost_active else int(st.compressor_on)
        bits = {
            D_COMPRESSOR: st.compressor_on,
            D_DEFROST_RELAY: st.defrost_active,
            D_FAN: st.fan_on,
            D_LOW_ALARM: st.room <= self.model.setpoint - 8,
            D_HIGH_ALARM: st.alarm,
            D_DEFROST: st.defrost_active,
            D_DOOR: st.door_open,
            D_ON: True,
        }
        for addr, on in bits.items():
            co[addr] = int(on)

    def on_write(self, table: Table, address: int, values: tuple[int, ...]) -> None:
        if table == "holding" and address <= A_SETPOINT < address + len(values):
            value = _from_s16(values[A_SETPOINT - address])
            if not -50 <= value <= 50:
                raise SlaveException(frames.EXC_ILLEGAL_VALUE)
            self.model.set_setpoint(value)
        super().on_write(table, address, values)
