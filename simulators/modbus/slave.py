"""A simulated Modbus slave as plain data: four address spaces, a refresh hook, a write hook,
and injectable faults. The responders (RTU on a pty, TCP on loopback) turn requests into calls
here, so one device model serves both transports."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from drivers.errors import CodecError
from drivers.modbus import frames
from firmware_profiles.schema import ModbusPoint

Table = Literal["coil", "discrete", "holding", "input"]


class SlaveException(Exception):
    """Answer with this Modbus exception code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exception {code}")
        self.code = code


@dataclass
class SlaveFaults:
    """What a misbehaving device does. `silent` is the dead slave of a real bus: no answer at
    all, so the master times out (a multi-device pymodbus server would answer exception 4).

    `garbage_every` N: every Nth reply is line noise (a CRC error on RTU), as on a long,
    badly terminated RS-485 run. `wrong_tid_every` N (TCP): every Nth reply carries the
    previous request's transaction id instead of its own, as some gateways do.
    `garble_write_replies`: a write is applied but its reply arrives as noise.
    """

    silent: bool = False
    exception: int | None = None
    garbage: bool = False
    delay_s: float = 0.0
    garbage_every: int = 0
    wrong_tid_every: int = 0
    garble_write_replies: bool = False

    def garbles(self, reply_no: int, pdu: bytes) -> bool:
        """Whether reply number `reply_no` (1-based) to request `pdu` goes out as noise."""
        if self.garbage:
            return True
        if self.garble_write_replies and pdu[:1] and pdu[0] in frames.WRITE_FUNCTIONS:
            return True
        return self.garbage_every > 0 and reply_no % self.garbage_every == 0


class MapSlave:
    """Register spaces as dicts; only addresses present in a space exist (others: exception 2).

    `refuse_reads_across_holes(points)` makes it the strict controller some refrigeration
    firmware is: a read that covers any address none of `points` uses is refused with
    exception 02, although each point read alone is answered."""

    def __init__(self) -> None:
        self.spaces: dict[Table, dict[int, int]] = {
            "coil": {},
            "discrete": {},
            "holding": {},
            "input": {},
        }
        self.faults = SlaveFaults()
        self.requests = 0
        self.writes = 0
        self.refused_spans = 0
        self._mapped: dict[str, set[int]] | None = None

    def refuse_reads_across_holes(self, points: Iterable[ModbusPoint]) -> None:
        mapped: dict[str, set[int]] = {t: set() for t in self.spaces}
        for p in points:
            mapped[p.table].update(range(p.address, p.address + p.width))
        self._mapped = mapped

    def define(self, table: Table, start: int, count: int, value: int = 0) -> None:
        for a in range(start, start + count):
            self.spaces[table].setdefault(a, value)

    def refresh(self) -> None:
        """Bring live values up to date before a read (models advance to the clock here)."""

    def on_write(self, table: Table, address: int, values: tuple[int, ...]) -> None:
        """Validate and apply a write; raise SlaveException to refuse it."""
        space = self.spaces[table]
        for i, v in enumerate(values):
            space[address + i] = v

    def read(self, table: Table, address: int, count: int) -> list[int]:
        space = self.spaces[table]
        if any(a not in space for a in range(address, address + count)):
            raise SlaveException(frames.EXC_ILLEGAL_ADDRESS)
        mapped = self._mapped
        if (
            mapped is not None
            and count > 1
            and any(a not in mapped[table] for a in range(address, address + count))
        ):
            self.refused_spans += 1
            raise SlaveException(frames.EXC_ILLEGAL_ADDRESS)
        return [space[a] for a in range(address, address + count)]

    def handle(self, pdu: bytes) -> bytes:
        """One request PDU in, one response PDU out (possibly an exception response)."""
        self.requests += 1
        fc = pdu[0] if pdu else 0
        try:
            req = frames.parse_request(pdu)
        except CodecError:
            return frames.exception_response(fc, frames.EXC_ILLEGAL_VALUE)
        if self.faults.exception is not None:
            return frames.exception_response(fc, self.faults.exception)
        try:
            if req.function in frames.READ_FUNCTIONS:
                table: Table = frames.READ_FUNCTIONS[req.function]  # type: ignore[assignment]
                limit = 2000 if req.function in (1, 2) else 125
                if not 1 <= req.count <= limit:
                    raise SlaveException(frames.EXC_ILLEGAL_VALUE)
                self.refresh()
                values = self.read(table, req.address, req.count)
                if req.function in (1, 2):
                    return frames.read_response(fc, [bool(v) for v in values])
                return frames.read_response(fc, values)
            table = "coil" if req.function in (5, 15) else "holding"
            self.read(table, req.address, req.count)  # every target must exist
            self.refresh()
            self.on_write(table, req.address, req.values)
            self.writes += 1
            return frames.write_response(req)
        except SlaveException as exc:
            return frames.exception_response(fc, exc.code)


def garbage_for(rng: random.Random, unit: int) -> bytes:
    """A reply-sized burst of noise addressed to `unit` (CRC almost surely wrong)."""
    return bytes([unit]) + bytes(rng.randrange(256) for _ in range(rng.randrange(3, 12)))


@dataclass
class LineLog:
    """When frames started and ended on the simulated line (perf_counter seconds), so a bench
    can measure the silent interval the master left between a reply and its next request."""

    request_starts: list[float] = field(default_factory=list)
    reply_ends: list[float] = field(default_factory=list)
    enabled: bool = False

    def gaps(self) -> list[float]:
        """Silence before each request that followed a reply."""
        out = []
        ends = self.reply_ends
        j = 0
        for start in self.request_starts:
            while j + 1 < len(ends) and ends[j + 1] <= start:
                j += 1
            if ends and ends[j] <= start:
                out.append(start - ends[j])
        return out
