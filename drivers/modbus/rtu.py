"""Modbus RTU master on a serial port: the project's own framing (`frames.py`) over the port's
file descriptor, read by the event loop's reader callback.

pymodbus's RTU client spent several times the wire time of a short frame at 115,200 baud in
its own Python (framer, transaction manager, logging hooks); a master on a half-duplex line only
ever has one request in flight, so a transaction here is: write the frame, let the reader
callback collect bytes until the reply is complete, resolve one future. pyserial only opens
and configures the port (baud rate, parity, raw mode).

Errors are translated as in `backend.PymodbusBackend`: no (valid) answer → DeviceIOError,
exception response → ExceptionResponse (a DeviceRejected).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import termios
import time
from typing import Any

from drivers.errors import CodecError, DeviceIOError, ExceptionResponse
from drivers.modbus import frames

_READ_FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


class RtuBackend:
    """One serial port shared by every device on an RS-485 line (callers hold the BusLock)."""

    def __init__(
        self,
        port: str,
        baudrate: int,
        parity: str,
        stopbits: float,
        bytesize: int,
        timeout_s: float,
    ) -> None:
        self.port = port
        self._settings = (baudrate, parity, stopbits, bytesize)
        self._timeout = timeout_s
        self._serial: Any = None
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rx = bytearray()
        self._waiter: asyncio.Future[bytes] | None = None
        self._function = 0
        # perf_counter of the last request handed to the port and of the last complete reply:
        # the silent interval on the line is bounded below by request_at - reply_at.
        self.request_at = 0.0
        self.reply_at = 0.0

    @property
    def connected(self) -> bool:
        return self._serial is not None

    async def connect(self) -> None:
        import serial  # type: ignore[import-untyped]

        if self._serial is not None:
            return
        baudrate, parity, stopbits, bytesize = self._settings
        try:
            port = serial.Serial(
                self.port,
                baudrate=baudrate,
                parity=parity,
                stopbits=stopbits,
                bytesize=bytesize,
                timeout=0,
            )
        except (OSError, ValueError, serial.SerialException) as exc:
            raise DeviceIOError(f"connect failed: {exc}") from exc
        self._serial = port
        self._fd = port.fileno()
        os.set_blocking(self._fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def close(self) -> None:
        self._drop(DeviceIOError("port closed"))

    def _drop(self, exc: DeviceIOError) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            assert self._loop is not None
            with contextlib.suppress(Exception):  # the loop may already be closed at shutdown
                self._loop.remove_reader(self._fd)
            with contextlib.suppress(OSError):
                port.close()
            self._fd = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # -- requests -------------------------------------------------------------------------

    async def read(self, table: str, address: int, count: int, unit_id: int) -> list[int]:
        fc = _READ_FC[table]
        pdu = await self._transact(unit_id, frames.read_request_pdu(fc, address, count))
        try:
            return frames.read_reply_values(fc, pdu, count)  # type: ignore[return-value]
        except CodecError as exc:
            raise DeviceIOError(f"bad reply: {exc}") from exc

    async def write_registers(self, address: int, words: list[int], unit_id: int) -> None:
        if len(words) == 1:
            pdu = struct.pack(">BHH", 6, address, words[0])
        else:
            n = len(words)
            pdu = struct.pack(f">BHHB{n}H", 16, address, n, 2 * n, *words)
        await self._transact(unit_id, pdu)

    async def write_coil(self, address: int, value: bool, unit_id: int) -> None:
        await self._transact(unit_id, struct.pack(">BHH", 5, address, 0xFF00 if value else 0))

    async def _transact(self, unit: int, pdu: bytes) -> bytes:
        if self._serial is None:
            raise DeviceIOError("port not open")
        if self._waiter is not None:  # callers serialise through the line's BusLock
            raise RuntimeError(f"{self.port}: a transaction is already in flight")
        loop = self._loop
        assert loop is not None
        # Bytes of an earlier late or noisy reply would be taken for the start of this one.
        self._rx.clear()
        with contextlib.suppress(termios.error):
            termios.tcflush(self._fd, termios.TCIFLUSH)
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._waiter = waiter
        self._function = pdu[0]
        frame = frames.rtu_frame(unit, pdu)
        try:
            self.request_at = time.perf_counter()
            self._write(frame)
        except OSError as exc:
            self._waiter = None
            self.close()
            raise DeviceIOError(f"write failed: {exc}") from exc
        timer = loop.call_later(self._timeout, self._timed_out, waiter)
        try:
            reply = await waiter
        finally:
            timer.cancel()
            self._waiter = None
        try:
            got_unit, got = frames.split_rtu(reply)
        except CodecError as exc:
            raise DeviceIOError(f"bad reply: {exc}") from exc
        if got_unit != unit:
            raise DeviceIOError(f"reply from unit {got_unit}, expected {unit}")
        if got[0] & 0x80:
            raise ExceptionResponse(got[1])
        return got

    def _write(self, frame: bytes) -> None:
        # A frame is at most 256 bytes and the port's transmit buffer is empty between
        # transactions, so a short write is exceptional: finish it here, within the timeout.
        view = memoryview(frame)
        deadline = time.perf_counter() + self._timeout
        while view:
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:
                if time.perf_counter() > deadline:
                    raise OSError("transmit buffer full") from None

    # -- event loop callbacks -----------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 512)
        except BlockingIOError:
            return
        except OSError as exc:  # the adapter went away: reopen on the next connect()
            self._drop(DeviceIOError(f"read failed: {exc}"))
            return
        if not data:
            self._drop(DeviceIOError("port closed by the other end"))
            return
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody asked: a late reply or line noise
        rx = self._rx
        rx += data
        try:
            n = frames.rtu_reply_length(rx, self._function)
        except CodecError as exc:
            waiter.set_exception(DeviceIOError(f"bad reply: {exc}"))
            return
        if n is not None and len(rx) >= n:
            self.reply_at = time.perf_counter()
            waiter.set_result(bytes(rx[:n]))

    def _timed_out(self, waiter: asyncio.Future[bytes]) -> None:
        if not waiter.done():
            waiter.set_exception(DeviceIOError(f"no answer within {self._timeout:g} s"))
