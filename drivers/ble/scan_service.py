"""The one passive scanner of the box: every BLE sensor's adverts arrive here and are routed by
MAC to that sensor. A watchdog restarts the scan (with backoff, without restarting the agent)
when no advert arrived for `watchdog_s` or the adapter went away and came back."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from drivers.ble.advertisement import Advertisement
from drivers.ble.backend import ScannerBackend
from drivers.ble.sensor import BleSensor
from drivers.errors import DeviceIOError
from edge_agent.backoff import Backoff
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.messages import Reading

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2000  # adverts' readings waiting for the bus; beyond it the oldest are dropped


class BleScanService:
    def __init__(
        self,
        adapter: str,
        sensors: list[BleSensor],
        backend: ScannerBackend,
        bus: Bus,
        clock: Clock,
        watchdog_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.adapter = adapter
        self.sensors = {s.address: s for s in sensors}
        self.backend = backend
        self.bus = bus
        self.clock = clock
        self.watchdog_s = watchdog_s
        self._backoff = Backoff(base=1.0, cap=60.0, rng=rng)
        self._queue: asyncio.Queue[list[Reading]] = asyncio.Queue(QUEUE_LIMIT)
        self._last_advert = clock.monotonic()
        self._down_since: float | None = None
        self.scanning = False
        self.starts = 0
        self.restarts = 0
        self.adverts = 0
        self.dropped = 0
        self.unknown = 0
        # Called after each advert of a known sensor (GATT sessions learn the device handle).
        self.listeners: list[Callable[[BleSensor], None]] = []

    # adverts arrive on the event loop from the backend (a plain callback, so no awaits here)
    def on_advert(self, adv: Advertisement, handle: object = None) -> None:
        self._last_advert = self.clock.monotonic()
        self.adverts += 1
        sensor = self.sensors.get(adv.address)
        if sensor is None:
            self.unknown += 1
            return
        readings = sensor.on_advert(adv, self.clock.time(), handle)
        for listener in self.listeners:
            listener(sensor)
        if not readings:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(readings)

    async def run(self) -> None:
        now = self.clock.time()
        for s in self.sensors.values():
            s.start_watch(now)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._publish(), name=f"ble-{self.adapter}-publish")
            await self._scan_forever()

    async def _publish(self) -> None:
        while True:
            batch = await self._queue.get()
            await self.bus.publish_many(batch)

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self.backend.start(self.on_advert)
            except DeviceIOError as exc:
                if self._down_since is None:
                    self._down_since = self.clock.time()
                    log.warning("ble %s: scanner down: %s", self.adapter, exc)
                await self._idle(self._backoff.next())
                continue
            self.starts += 1
            self.scanning = True
            if self._down_since is not None:
                log.info(
                    "ble %s: scanning again after %.1f s",
                    self.adapter,
                    self.clock.time() - self._down_since,
                )
                self._down_since = None
            self._backoff.reset()
            self._last_advert = self.clock.monotonic()
            try:
                await self._watch()
            finally:
                self.scanning = False
                await self.backend.stop()
            self.restarts += 1

    async def _watch(self) -> None:
        """Return when the scan looks stuck: no advert from anything for `watchdog_s`."""
        tick = max(1.0, min(self.watchdog_s, *self._offline_limits()) / 4)
        while True:
            await self._idle(tick)
            silent = self.clock.monotonic() - self._last_advert
            if silent >= self.watchdog_s:
                self._down_since = self.clock.time()
                log.warning(
                    "ble %s: no advertisement for %.0f s; restarting the scan", self.adapter, silent
                )
                return

    async def _idle(self, seconds: float) -> None:
        """Sleep, and mark sensors that fell silent meanwhile as offline."""
        await self.clock.sleep(seconds)
        now = self.clock.time()
        for s in self.sensors.values():
            s.check_silence(now)

    def _offline_limits(self) -> list[float]:
        return [s.section.offline_after_s for s in self.sensors.values()] or [self.watchdog_s]

    async def stop(self) -> None:
        await self.backend.stop()
