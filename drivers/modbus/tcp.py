"""Modbus TCP master: the MBAP header over one asyncio stream, the PDUs of `frames.py`.

A reply carries the transaction id of the request it answers. Gateways and busy devices send
replies that answer something else: a late reply to a request that timed out, or one stamped
with the wrong id. Such a reply is discarded and counted (`stale_replies`), and the request is
sent again under a new id; a reply to any of the ids this request went out under is accepted,
because they all asked the same question. So one bad reply costs one round trip, not the
connection: pymodbus's client raised on the mismatch and the coordinator reconnected, which
restarted the ids and kept such a device offline for good.

Errors are translated as in the RTU master: no (valid) answer → DeviceIOError, exception
response → ExceptionResponse (a DeviceRejected).
"""

from __future__ import annotations

import asyncio
import struct

from drivers.errors import CodecError, DeviceIOError, ExceptionResponse
from drivers.modbus import frames

_READ_FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
_MBAP = struct.Struct(">HHHB")


def mbap_frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return _MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


def parse_mbap_header(header: bytes) -> tuple[int, int, int]:
    """(transaction id, PDU length, unit) of a 7-byte MBAP header; CodecError if it is not
    Modbus (protocol id not 0, or a length no PDU can have)."""
    if len(header) != _MBAP.size:
        raise CodecError(f"MBAP header is {_MBAP.size} bytes, got {len(header)}")
    tid, proto, length, unit = _MBAP.unpack(header)
    if proto != 0:
        raise CodecError(f"protocol id {proto}, not Modbus")
    if not 2 <= length <= 254:
        raise CodecError(f"MBAP length {length} out of range")
    return tid, length - 1, unit


class TcpBackend:
    """One TCP connection to a device or gateway; one transaction in flight at a time."""

    def __init__(self, host: str, port: int, timeout_s: float, *, resends: int = 2) -> None:
        self.host = host
        self.port = port
        self._timeout = timeout_s
        self._resends = resends
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # polls and commands of one device share the connection
        self._tid = 0
        self.stale_replies = 0

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        if self.connected:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self._timeout * 2
            )
        except (OSError, TimeoutError) as exc:
            raise DeviceIOError(f"connect failed: {exc or type(exc).__name__}") from exc

    def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()

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

    def _next_tid(self) -> int:
        self._tid = self._tid % 0xFFFF + 1
        return self._tid

    async def _transact(self, unit: int, pdu: bytes) -> bytes:
        async with self._lock:
            if self._writer is None or self._reader is None:
                raise DeviceIOError("not connected")
            reader, writer = self._reader, self._writer
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            sent: set[int] = set()
            resends = self._resends
            try:
                while True:
                    tid = self._next_tid()
                    sent.add(tid)
                    writer.write(mbap_frame(tid, unit, pdu))
                    await writer.drain()
                    while True:
                        got_tid, got_unit, reply = await self._reply(reader, deadline, loop)
                        if got_tid in sent:
                            break
                        self.stale_replies += 1
                        if resends > 0:
                            break  # ask again under a new id
                    if got_tid in sent:
                        break
                    resends -= 1
            except TimeoutError as exc:
                # Nothing of a reply arrived: the stream is still in step, and a late reply
                # will be discarded by its id. Keep the connection (other units behind a
                # gateway are not affected by this one's silence).
                raise DeviceIOError(f"no answer within {self._timeout:g} s") from exc
            except (OSError, asyncio.IncompleteReadError, CodecError) as exc:
                # The stream is out of step (or gone): only a new connection resynchronises.
                self.close()
                raise DeviceIOError(f"bad reply: {exc or type(exc).__name__}") from exc
        if got_unit != unit:
            raise DeviceIOError(f"reply from unit {got_unit}, expected {unit}")
        if not reply:
            raise DeviceIOError("empty reply PDU")
        if reply[0] & 0x80:
            code = reply[1] if len(reply) > 1 else 0
            raise ExceptionResponse(code)
        if reply[0] != pdu[0]:
            raise DeviceIOError(f"reply with function code {reply[0]} to a request with {pdu[0]}")
        return reply

    async def _reply(
        self, reader: asyncio.StreamReader, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, int, bytes]:
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError(f"no answer within {self._timeout:g} s")
        header = b""
        try:
            async with asyncio.timeout(left):
                header = await reader.readexactly(_MBAP.size)
                tid, length, unit = parse_mbap_header(header)
                body = await reader.readexactly(length)
        except TimeoutError as exc:
            if header:  # the header was consumed: the stream is out of step
                raise CodecError("reply cut short after its header") from exc
            raise
        return tid, unit, body
