"""Serve FridgeModels with a Dixell XR77U-style (or XR60CX-style) register map over Modbus TCP.

Every read advances the model to the clock's current time, so values are always live; writes to
the setpoint register change the model's setpoint like the real controller would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_agent.clock import Clock, SystemClock
from simulators.modbus.fridge_model import FridgeModel

Variant = Literal["xr77u", "xr60cx"]

_COILS = {
    "xr77u": {"defrost_active": 536, "fan_on": 539, "compressor_on": 542, "alarm": 544},
    "xr60cx": {"running": 512, "defrost_active": 513},
}
_SETPOINT = {"xr77u": 853, "xr60cx": 863}
_COIL_BASE = 512
_COIL_WORDS = 4  # coils 512..575
_PARAM_BASE = 768
_PARAM_COUNT = 320  # 768..1087


def _s16(v: float) -> int:
    return round(v * 10) & 0xFFFF


def _from_s16(w: int) -> float:
    return (w - 0x10000 if w & 0x8000 else w) / 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FridgeSimulator:
    """One simulated controller on its own TCP port."""

    model: FridgeModel
    clock: Clock
    variant: Variant = "xr77u"
    unit_id: int = 1
    host: str = "127.0.0.1"
    port: int = 0
    reads: int = 0
    _server: ModbusTcpServer | None = None
    _task: asyncio.Task[Any] | None = None

    def device(self) -> SimDevice:
        return SimDevice(
            id=self.unit_id,
            action=self._action,
            simdata=(
                [SimData(_COIL_BASE, count=_COIL_WORDS * 16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [
                    SimData(256, count=8, values=0, datatype=DataType.REGISTERS),
                    SimData(_PARAM_BASE, count=_PARAM_COUNT, values=0, datatype=DataType.REGISTERS),
                ],
                [SimData(0, count=8, values=0, datatype=DataType.REGISTERS)],
            ),
        )

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        st = self.model.advance_to(self.clock.time())
        sp_addr = _SETPOINT[self.variant]
        if function_code in (6, 16) and set_values and address <= sp_addr < address + count:
            value = _from_s16(int(set_values[sp_addr - address]))
            if not -50 <= value <= 50:
                return ExcCodes.ILLEGAL_VALUE
            self.model.set_setpoint(value)
            return None
        if function_code == 3:
            # `registers` is the whole holding space, starting at start_address.
            self.reads += 1
            registers[256 - start_address] = _s16(st.room)
            registers[257 - start_address] = _s16(st.evaporator)
            registers[258 - start_address] = _s16(st.product)
            registers[sp_addr - start_address] = _s16(self.model.setpoint)
        elif function_code == 1:
            self.reads += 1
            states = {
                "defrost_active": st.defrost_active,
                "fan_on": st.fan_on,
                "compressor_on": st.compressor_on,
                "alarm": st.alarm,
                "running": True,
            }
            for name, addr in _COILS[self.variant].items():
                idx, bit = divmod(addr, 16)
                idx -= start_address
                if states[name]:
                    registers[idx] |= 1 << bit
                else:
                    registers[idx] &= ~(1 << bit) & 0xFFFF
        return None

    async def start(self) -> None:
        if not self.port:
            self.port = free_port()
        self._server = ModbusTcpServer(self.device(), address=(self.host, self.port))
        self._task = asyncio.create_task(
            self._server.serve_forever(), name=f"sim:fridge:{self.port}"
        )
        # serve_forever binds asynchronously: wait until the port accepts.
        for _ in range(200):
            try:
                _, w = await asyncio.open_connection(self.host, self.port)
                w.close()
                await w.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.01)
        raise RuntimeError(f"simulator did not start on port {self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def start_fleet(
    count: int,
    *,
    seed: int = 0,
    clock: Clock | None = None,
    base_port: int = 0,
    variant: Variant = "xr77u",
) -> list[FridgeSimulator]:
    clock = clock or SystemClock()
    sims = []
    for i in range(count):
        sim = FridgeSimulator(
            FridgeModel(clock.time(), seed=seed + i),
            clock,
            variant=variant,
            port=base_port + i if base_port else 0,
        )
        await sim.start()
        sims.append(sim)
    return sims
