"""Put simulated slaves on a line: several units on one RTU pty (an RS-485 bus), or on a Modbus
TCP port. Unlike a multi-device pymodbus server, a unit that is dead (or absent) stays silent,
so the master sees the timeout a real bus gives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
import time
from collections.abc import Mapping

from drivers.errors import CodecError
from drivers.modbus import frames
from simulators.modbus.slave import LineLog, MapSlave, garbage_for
from simulators.pty_pair import PtyPair


class RtuResponder:
    """The slave end of an RS-485 line: reads request frames from a tty, answers per unit id."""

    def __init__(self, path: str, slaves: Mapping[int, MapSlave], *, seed: int = 0) -> None:
        self.path = path
        self.slaves = dict(slaves)
        self.rng = random.Random(seed)
        self.line = LineLog()
        self.dropped = 0  # frames discarded for a bad CRC or unframeable bytes
        self._fd: int | None = None
        self._buf = b""
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        import termios
        import tty

        self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        with contextlib.suppress(termios.error):
            tty.setraw(self._fd)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def stop(self) -> None:
        if self._fd is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            self.stop()
            return
        if not self._buf and self.line.enabled:
            self.line.request_starts.append(time.perf_counter())
        self._buf += data
        self._drain()

    def _drain(self) -> None:
        while self._buf:
            try:
                n = frames.rtu_request_length(self._buf)
            except CodecError:
                self._discard()
                return
            if n is None or len(self._buf) < n:
                return
            frame, self._buf = self._buf[:n], self._buf[n:]
            try:
                unit, pdu = frames.split_rtu(frame)
            except CodecError:
                self._discard()
                return
            self._dispatch(unit, pdu)

    def _discard(self) -> None:
        # A real slave resynchronises on the next 3.5-character silence: drop what we have.
        self.dropped += 1
        self._buf = b""

    def _dispatch(self, unit: int, pdu: bytes) -> None:
        slave = self.slaves.get(unit)
        if slave is None or slave.faults.silent:
            return
        answer = slave.handle(pdu)
        if slave.faults.garbles(slave.requests, pdu):
            reply = garbage_for(self.rng, unit)
        else:
            reply = frames.rtu_frame(unit, answer)
        if slave.faults.delay_s > 0:
            assert self._loop is not None
            self._loop.call_later(slave.faults.delay_s, self._send, reply)
        else:
            self._send(reply)

    def _send(self, reply: bytes) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._fd, reply)
        if self.line.enabled:
            self.line.reply_ends.append(time.perf_counter())


class RtuBus:
    """A pty pair with an RtuResponder on the far end: `master` is the port the driver opens."""

    def __init__(self, slaves: Mapping[int, MapSlave], *, seed: int = 0) -> None:
        self.pty = PtyPair(name="rs485")
        self.responder = RtuResponder(self.pty.device_path, slaves, seed=seed)

    @property
    def port(self) -> str:
        return self.pty.host_path

    async def start(self) -> None:
        await self.pty.start()
        self.responder.start()

    async def stop(self) -> None:
        self.responder.stop()
        await self.pty.stop()


class TcpResponder:
    """Slaves behind one Modbus TCP endpoint (a gateway, or a device with its own IP).

    `absent_exception` makes it a gateway that answers for units it cannot reach, with
    exception 0A (path unavailable) or 0B (target failed to respond), as real ones do."""

    def __init__(
        self,
        slaves: Mapping[int, MapSlave],
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        *,
        absent_exception: int | None = None,
    ) -> None:
        self.slaves = dict(slaves)
        self.absent_exception = absent_exception
        self.host = host
        self.port = port
        self.rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _pid, length, unit = struct.unpack(">HHHB", header)
                if not 2 <= length <= 254:
                    break  # not Modbus: a real device drops the connection
                pdu = await reader.readexactly(length - 1)
                await self._answer(writer, tid, unit, pdu)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, tid: int, unit: int, pdu: bytes) -> None:
        slave = self.slaves.get(unit)
        if slave is None and self.absent_exception is not None:
            reply = frames.exception_response(pdu[0] if pdu else 0, self.absent_exception)
            writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
            await writer.drain()
            return
        if slave is None or slave.faults.silent:
            return
        if slave.faults.delay_s > 0:
            await asyncio.sleep(slave.faults.delay_s)
        reply = slave.handle(pdu)
        if slave.faults.garbles(slave.requests, pdu):
            writer.write(garbage_for(self.rng, unit))
        else:
            every = slave.faults.wrong_tid_every
            if every and slave.requests % every == 0:
                tid = (tid - 1) & 0xFFFF  # the id of the request before: a stale reply
            writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
        await writer.drain()


async def wait_port(host: str, port: int, limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            _, w = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
            continue
        w.close()
        with contextlib.suppress(OSError):
            await w.wait_closed()
        return
