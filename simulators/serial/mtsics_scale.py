"""A fake MT-SICS scale on one end of a socat pty pair, answering from a ScaleModel.

It speaks the subset a venue uses (S, SI, T, TI, Z, ZI, @, I2, I4) and can be told to
misbehave: stop answering, answer with garbage, answer late (by the injected clock), or answer
the next request with ES/ET/EL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Literal

from drivers.errors import CodecError, DeviceIOError
from drivers.serial.line import PortSettings, SerialLine
from edge_agent.clock import Clock
from simulators.pty_pair import PtyPair
from simulators.serial.scale_model import Sample, ScaleModel

log = logging.getLogger(__name__)

__all__ = ["FakeScale", "PtyPair"]

Fault = Literal["none", "silent", "garbage", "slow"]
_UNIT_KG = {"kg": 1.0, "g": 1e-3}


@dataclass
class FakeScale:
    model: ScaleModel
    clock: Clock
    port: str
    unit: str = "kg"
    decimals: int = 3
    identity: str = "WMS-Bench 6.0"
    serial_number: str = "B123456789"
    fault: Fault = "none"
    slow_s: float = 2.0
    next_error: Literal["ES", "ET", "EL"] | None = None
    requests: int = 0
    log: list[str] = field(default_factory=list)
    _line: SerialLine | None = field(default=None, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Open the port first (pyserial flushes input on open), then serve: once this returns
        the scale is listening and a request cannot be lost to that flush."""
        self._line = SerialLine(PortSettings(self.port, exclusive=False), self.clock)
        self._line.open()
        self._task = asyncio.create_task(self._serve(self._line), name=f"sim:scale:{self.port}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._line is not None:
            self._line.close()
            self._line = None

    @property
    def serving(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _serve(self, line: SerialLine) -> None:
        while True:
            try:
                request = (await line.read_line(None)).decode("ascii", "replace").strip()
            except CodecError:
                continue
            except DeviceIOError:
                return  # the pty went away (unplugged); a new start() serves the new one
            self.requests += 1
            self.log.append(request)
            reply = await self._reply(request)
            if reply is None:
                continue
            try:
                line.write_line(reply)
            except DeviceIOError:
                return

    async def _reply(self, request: str) -> bytes | None:
        if self.fault == "silent":
            return None
        if self.fault == "garbage":
            return bytes([0x53, 0x20, 0xFF, 0x00, 0x7F]) + b"\x9b!!\r\n"
        if self.fault == "slow":
            await self.clock.sleep(self.slow_s)
        if self.next_error is not None:
            err, self.next_error = self.next_error, None
            return err.encode() + b"\r\n"
        return (await self.answer(request)).encode("ascii") + b"\r\n"

    async def answer(self, request: str) -> str:
        cmd = (request.split() or [""])[0]
        now = self.clock.time()
        m = self.model
        if cmd in ("S", "T") and m.sample(now).status == "dynamic":
            # S and T wait for the weight to settle, as the real firmware does
            await self.clock.sleep(max(0.0, m.settled_at() - now))
            now = self.clock.time()
        if cmd in ("S", "SI"):
            return self._weight("S", m.sample(now), cmd == "SI")
        if cmd in ("T", "TI"):
            if cmd == "T" or m.sample(now).status == "stable":
                return self._weight(cmd, m.tare(now), cmd == "TI")
            return f"{cmd} I"
        if cmd in ("Z", "ZI"):
            result = m.zero(now)
            if result == "stable":
                return "Z A" if cmd == "Z" else "ZI S"
            return f"{cmd} {'I' if result == 'dynamic' else '+' if result == 'overload' else '-'}"
        if cmd == "I2":
            return f'I2 A "{self.identity} {m.capacity_kg / _UNIT_KG[self.unit]:g} {self.unit}"'
        if cmd == "I4":
            return f'I4 A "{self.serial_number}"'
        if cmd == "@":
            m.tare_kg = 0.0
            return f'I4 A "{self.serial_number}"'
        return "ES"

    def _weight(self, cmd: str, s: Sample, immediate: bool) -> str:
        if s.status in ("overload", "underload"):
            return f"{cmd} {'+' if s.status == 'overload' else '-'}"
        flag = "D" if s.status == "dynamic" and immediate else "S"
        value = s.net_kg / _UNIT_KG[self.unit]
        return f"{cmd} {flag} {value:10.{self.decimals}f} {self.unit}"
