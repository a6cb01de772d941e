"""One coordinator per Modbus device: batched reads on a fixed cadence, fan-out to points.

Polls are aligned to multiples of the poll interval so all devices of a venue read in the same
instant and the store commits them as one batch. A device that stops answering backs off on
its own without holding anything up; devices on one RS-485 bus share a lock and honour the
inter-frame gap.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random

from drivers.backoff import Backoff
from drivers.errors import CodecError, DeviceIOError, DeviceRejected
from drivers.modbus.backend import ModbusBackend
from drivers.modbus.codec import ReadBlock, decode_block, plan_reads
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth
from edge_agent.messages import Reading
from firmware_profiles.schema import Profile

log = logging.getLogger(__name__)


class BusLock:
    """Serialises transactions on one physical RS-485 line and keeps the silent gap between them."""

    def __init__(self, gap_s: float, clock: Clock) -> None:
        self.gap_s = gap_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last_end = -math.inf

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        wait = self._last_end + self.gap_s - self._clock.monotonic()
        if wait > 0:
            await self._clock.sleep(wait)

    async def __aexit__(self, *exc: object) -> None:
        self._last_end = self._clock.monotonic()
        self._lock.release()


class ModbusCoordinator:
    def __init__(
        self,
        device: DeviceConfig,
        profile: Profile,
        backend: ModbusBackend,
        bus: Bus,
        clock: Clock,
        health: DeviceHealth,
        *,
        line_lock: BusLock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        assert profile.modbus is not None
        self.device = device
        self.profile = profile
        self.section = profile.modbus
        self.backend = backend
        self.bus = bus
        self.clock = clock
        self.health = health
        self.blocks: list[ReadBlock] = plan_reads(self.section)
        self._line_lock = line_lock
        self._backoff = Backoff(base=1.0, cap=60.0, rng=rng)
        self._units = {p.name: p.unit for p in self.section.points}

    async def poll_once(self) -> list[Reading]:
        """Read every block once; raises DeviceIOError/DeviceRejected, counts malformed data."""
        now = self.clock.time()
        out: list[Reading] = []
        dev = self.device.id
        for block in self.blocks:
            values = await self._read(block)
            try:
                decoded = decode_block(
                    block, values, self.section.byte_order, self.section.word_order
                )
            except CodecError as exc:
                self.health.bad_data(self.clock.time(), exc)
                continue
            for point, value in decoded:
                out.append(Reading(dev, point.name, value, now, point.unit))
        return out

    async def _read(self, block: ReadBlock) -> list[int]:
        unit = self.device.unit_id
        if self._line_lock is None:
            return await self.backend.read(block.table, block.start, block.count, unit)
        async with self._line_lock:
            return await self.backend.read(block.table, block.start, block.count, unit)

    async def run(self) -> None:
        interval = self.device.poll_interval_s
        while True:
            try:
                if not self.backend.connected:
                    await self.backend.connect()
                readings = await self.poll_once()
            except (DeviceIOError, DeviceRejected) as exc:
                self.health.failed(self.clock.time(), exc)
                if isinstance(exc, DeviceIOError):
                    self.backend.close()
                await self.clock.sleep(min(self._backoff.next(), max(interval, 1.0) * 12))
                continue
            self._backoff.reset()
            self.health.ok(self.clock.time())
            if readings:
                await self.bus.publish_many(readings)
            now = self.clock.time()
            next_tick = (math.floor(now / interval) + 1) * interval
            await self.clock.sleep(next_tick - now)
