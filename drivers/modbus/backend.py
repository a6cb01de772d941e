"""The I/O seam of the Modbus driver: a small facade over pymodbus that tests can replace.

pymodbus errors are translated here into DeviceIOError (no answer) and DeviceRejected
(exception response), so nothing above this module knows pymodbus exists.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from drivers.errors import DeviceIOError, ExceptionResponse

log = logging.getLogger(__name__)


class ModbusBackend(Protocol):
    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def read(self, table: str, address: int, count: int, unit_id: int) -> list[int]: ...

    async def write_registers(self, address: int, words: list[int], unit_id: int) -> None: ...

    async def write_coil(self, address: int, value: bool, unit_id: int) -> None: ...

    def close(self) -> None: ...


class PymodbusBackend:
    """One pymodbus client (a TCP connection, or a serial port shared by a bus's devices)."""

    def __init__(self, client: object, timeout_s: float) -> None:
        from pymodbus.exceptions import ModbusException

        self._client = client
        self._timeout = timeout_s
        self._modbus_exc = ModbusException

    @classmethod
    def tcp(cls, host: str, port: int, timeout_s: float) -> PymodbusBackend:
        from pymodbus.client import AsyncModbusTcpClient

        # retries=0: the coordinator owns retrying and backoff, with one policy for all.
        client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)
        return cls(client, timeout_s)

    @classmethod
    def rtu(
        cls,
        port: str,
        baudrate: int,
        parity: str,
        stopbits: float,
        bytesize: int,
        timeout_s: float,
    ) -> PymodbusBackend:
        """pymodbus's RTU client. The driver uses `drivers.modbus.rtu.RtuBackend` (several times
        less CPU per transaction); this stays so bench/modbus.py can compare the two."""
        from pymodbus import FramerType
        from pymodbus.client import AsyncModbusSerialClient

        client = AsyncModbusSerialClient(
            port,
            framer=FramerType.RTU,
            baudrate=baudrate,
            parity=parity,
            stopbits=int(stopbits),
            bytesize=bytesize,
            timeout=timeout_s,
            retries=0,
        )
        return cls(client, timeout_s)

    @property
    def connected(self) -> bool:
        return bool(getattr(self._client, "connected", False))

    async def connect(self) -> None:
        try:
            ok = await asyncio.wait_for(self._client.connect(), self._timeout * 2)  # type: ignore[attr-defined]
        except (OSError, TimeoutError, self._modbus_exc) as exc:
            raise DeviceIOError(f"connect failed: {exc}") from exc
        if not ok:
            raise DeviceIOError("connect failed")

    async def read(self, table: str, address: int, count: int, unit_id: int) -> list[int]:
        c = self._client
        fn = {
            "holding": c.read_holding_registers,  # type: ignore[attr-defined]
            "input": c.read_input_registers,  # type: ignore[attr-defined]
            "coil": c.read_coils,  # type: ignore[attr-defined]
            "discrete": c.read_discrete_inputs,  # type: ignore[attr-defined]
        }[table]
        rr = await self._call(fn(address, count=count, device_id=unit_id))
        values = rr.bits if table in ("coil", "discrete") else rr.registers
        return list(values[:count])

    async def write_registers(self, address: int, words: list[int], unit_id: int) -> None:
        c = self._client
        if len(words) == 1:
            await self._call(c.write_register(address, words[0], device_id=unit_id))  # type: ignore[attr-defined]
        else:
            await self._call(c.write_registers(address, words, device_id=unit_id))  # type: ignore[attr-defined]

    async def write_coil(self, address: int, value: bool, unit_id: int) -> None:
        await self._call(self._client.write_coil(address, value, device_id=unit_id))  # type: ignore[attr-defined]

    async def _call(self, awaitable: object) -> Any:
        try:
            rr = await awaitable  # type: ignore[misc]
        except (OSError, TimeoutError, self._modbus_exc) as exc:
            raise DeviceIOError(str(exc) or type(exc).__name__) from exc
        if rr.isError():
            raise ExceptionResponse(int(getattr(rr, "exception_code", 0) or 0))
        return rr

    def close(self) -> None:
        self._client.close()  # type: ignore[attr-defined]
