"""A GATT session with a logger: connect through the handle the scanner saw, subscribe to live
notifications (again after every reconnect: a dropped link loses the subscription), and
backfill the logger's stored history after an outage, marked BACKFILLED with the original
timestamps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from bleak import BleakClient
from bleak.exc import BleakError
from dbus_fast import DBusError

from drivers.ble import history
from drivers.ble.scan_service import BleScanService
from drivers.ble.sensor import BleSensor
from drivers.errors import CodecError, DeviceIOError
from edge_agent.backoff import Backoff
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.messages import Quality, Reading
from firmware_profiles.sections.ble import BleGatt, full_uuid

log = logging.getLogger(__name__)

_IO_ERRORS = (BleakError, DBusError, OSError, EOFError, TimeoutError)
HISTORY_TIMEOUT_S = 30.0


class GattClient(Protocol):
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def start_notify(self, uuid: str, callback: Any, /) -> None: ...
    async def write_gatt_char(self, uuid: str, data: bytes, /, response: bool) -> None: ...
    async def read_gatt_char(self, uuid: str, /) -> bytearray: ...


ClientFactory = Callable[[Any, Callable[[Any], None], float], GattClient]


def bleak_client(handle: Any, on_disconnect: Callable[[Any], None], timeout: float) -> GattClient:
    return BleakClient(handle, disconnected_callback=on_disconnect, timeout=timeout)


class GattSession:
    def __init__(
        self,
        sensor: BleSensor,
        scan: BleScanService,
        bus: Bus,
        clock: Clock,
        client_factory: ClientFactory = bleak_client,
    ) -> None:
        assert sensor.section.gatt is not None
        self.sensor = sensor
        self.gatt: BleGatt = sensor.section.gatt
        self.bus = bus
        self.clock = clock
        self.client_factory = client_factory
        self.connects = 0
        self.subscriptions = 0
        self.backfilled = 0
        self.last_ts: float | None = None  # newest record seen, live or history
        self._seen = asyncio.Event()
        self._down_logged = False
        self._history: asyncio.Queue[bytes] = asyncio.Queue()
        # Live readings, and None when the link drops; bounded like every queue in the box.
        self._live: asyncio.Queue[list[Reading] | None] = asyncio.Queue(1000)
        self._units = {p.name: p.unit for p in sensor.section.points}
        self._by_field = {p.source: p.name for p in sensor.section.points}
        scan.listeners.append(self._on_seen)

    def _on_seen(self, sensor: BleSensor) -> None:
        if sensor is self.sensor:
            self._seen.set()

    async def run(self) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        dev = self.sensor.device.id
        while True:
            await self._seen.wait()  # connect only to a device the scanner can hear
            try:
                await self._session(backoff)
            except DeviceIOError as exc:
                if not self._down_logged:
                    self._down_logged = True
                    log.warning("%s: GATT link down: %s", dev, exc)
            self._seen.clear()
            await self.clock.sleep(backoff.next())

    async def _session(self, backoff: Backoff) -> None:
        dropped = asyncio.Event()
        while not self._live.empty():
            self._live.get_nowait()

        def on_drop(_client: Any) -> None:
            dropped.set()
            self._put_live(None)

        client = self.client_factory(self.sensor.handle, on_drop, self.gatt.connect_timeout_s)
        try:
            try:
                await client.connect()
                # Subscriptions do not survive a reconnect: subscribe on every connection.
                await client.start_notify(full_uuid(self.gatt.live), self._on_live)
                self.subscriptions += 1
                if self.gatt.history_control is not None:
                    await self._backfill(client)
            except _IO_ERRORS as exc:
                raise DeviceIOError(f"GATT: {type(exc).__name__}: {exc}") from exc
            self.connects += 1
            backoff.reset()
            if self._down_logged:
                self._down_logged = False
                log.info("%s: GATT link back", self.sensor.device.id)
            while (batch := await self._live.get()) is not None:
                await self.bus.publish_many(batch)
            raise DeviceIOError("peripheral disconnected")
        finally:
            # Also after a peripheral-initiated drop: bleak keeps a D-Bus connection per
            # session until disconnect() releases it, so skipping this leaks one per reconnect.
            try:
                await client.disconnect()
            except _IO_ERRORS as exc:
                log.debug("%s: disconnect: %s", self.sensor.device.id, exc)

    def _readings(self, rec: history.LogRecord, ts: float, quality: Quality) -> list[Reading]:
        dev = self.sensor.device.id
        out = []
        for field, value in rec.fields().items():
            name = self._by_field.get(field)
            if name is not None:
                out.append(Reading(dev, name, value, ts, self._units[name], quality))
        return out

    def _on_live(self, _char: Any, data: bytearray) -> None:
        try:
            records = history.decode_records(bytes(data))
        except CodecError as exc:
            self.sensor.health.bad_data(self.clock.time(), exc)
            return
        for rec in records:
            self.last_ts = max(self.last_ts or 0, rec.ts)
            self._put_live(self._readings(rec, self.clock.time(), Quality.GOOD))

    def _put_live(self, item: list[Reading] | None) -> None:
        if self._live.full():
            self._live.get_nowait()  # the freshest value matters most for a live view
        self._live.put_nowait(item)

    def _on_history(self, _char: Any, data: bytearray) -> None:
        self._history.put_nowait(bytes(data))

    async def _backfill(self, client: GattClient) -> None:
        assert self.gatt.history_control is not None and self.gatt.history_data is not None
        since = self.last_ts
        if since is None:
            since = self.clock.time() - self.gatt.backfill_window_s
        while not self._history.empty():
            self._history.get_nowait()
        await client.start_notify(full_uuid(self.gatt.history_data), self._on_history)
        await client.write_gatt_char(
            full_uuid(self.gatt.history_control), history.request(int(since)), response=True
        )
        readings: list[Reading] = []
        while True:
            chunk = await asyncio.wait_for(self._history.get(), HISTORY_TIMEOUT_S)
            if chunk == history.END:
                break
            try:
                records = history.decode_records(chunk)
            except CodecError as exc:
                self.sensor.health.bad_data(self.clock.time(), exc)
                continue
            for rec in records:
                self.last_ts = max(self.last_ts or 0, rec.ts)
                readings += self._readings(rec, float(rec.ts), Quality.BACKFILLED)
        if readings:
            self.backfilled += len(readings)
            await self.bus.publish_many(readings)
            log.info("%s: backfilled %d readings", self.sensor.device.id, len(readings))
