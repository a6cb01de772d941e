"""The I/O seam for scanning: bleak's BleakScanner on a BlueZ adapter, behind a small protocol
so the scan service can be driven by anything that delivers Advertisements."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from dbus_fast import DBusError

from drivers.ble.advertisement import Advertisement
from drivers.errors import DeviceIOError
from firmware_profiles.sections.ble import BleMatch

log = logging.getLogger(__name__)

# The callback gets the advert and the backend's handle for the device (what a GATT client
# connects to without another scan).
AdvertCallback = Callable[[Advertisement, Any], None]
ScanMode = Literal["passive", "active"]


class ScannerBackend(Protocol):
    mode: ScanMode

    async def start(self, callback: AdvertCallback) -> None: ...

    async def stop(self) -> None: ...


def or_patterns(matches: Sequence[BleMatch]) -> list[OrPattern]:
    """BlueZ's passive scan reports only adverts matching a pattern: one per profile criterion."""
    pats: list[OrPattern] = []
    for m in matches:
        if m.service_data_uuid is not None and len(m.service_data_uuid) == 4:
            uuid16 = int(m.service_data_uuid, 16).to_bytes(2, "little")
            pats.append(OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, uuid16))
        elif m.manufacturer_id is not None:
            company = m.manufacturer_id.to_bytes(2, "little")
            pats.append(OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, company))
        elif m.local_name_prefix is not None:
            name = m.local_name_prefix.encode()
            pats.append(OrPattern(0, AdvertisementDataType.COMPLETE_LOCAL_NAME, name))
    # Inkbird's company id is its temperature: no fixed pattern matches it, hence the name.
    return list(
        {(p.start_position, p.ad_data_type, p.content_of_pattern): p for p in pats}.values()
    )


def to_advertisement(device: BLEDevice, data: AdvertisementData) -> Advertisement:
    return Advertisement(
        address=device.address.upper(),
        rssi=data.rssi,
        name=data.local_name or "",
        manufacturer_data=dict(data.manufacturer_data),
        service_data={k.lower(): v for k, v in data.service_data.items()},
        service_uuids=tuple(u.lower() for u in data.service_uuids),
    )


class BleakScannerBackend:
    """Passive scanning when BlueZ accepts it (no scan requests: kinder to coin cells), else
    active. The fallback is decided once, at the first start, and logged."""

    def __init__(
        self, adapter: str, matches: Sequence[BleMatch], mode: ScanMode = "passive"
    ) -> None:
        self.adapter = adapter
        self.mode: ScanMode = mode
        self._patterns: list[OrPattern | tuple[int, AdvertisementDataType, bytes]] = list(
            or_patterns(matches)
        )
        self._scanner: BleakScanner | None = None

    async def start(self, callback: AdvertCallback) -> None:
        def on_detect(device: BLEDevice, data: AdvertisementData) -> None:
            callback(to_advertisement(device, data), device)

        if self.mode == "passive" and not self._patterns:
            self.mode = "active"
        try:
            self._scanner = await self._start(on_detect, self.mode)
        except DeviceIOError as exc:
            if self.mode != "passive":
                raise
            # Only an adapter that scans actively but refuses passive makes us switch; when
            # the adapter is gone both fail and passive is tried again next time.
            self._scanner = await self._start(on_detect, "active")
            self.mode = "active"
            log.warning(
                "ble %s: passive scanning refused (%s); scanning actively", self.adapter, exc
            )

    async def _start(
        self, on_detect: Callable[[BLEDevice, AdvertisementData], None], mode: ScanMode
    ) -> BleakScanner:
        if mode == "passive":
            scanner = BleakScanner(
                on_detect,
                scanning_mode="passive",
                bluez={"adapter": self.adapter, "or_patterns": self._patterns},
            )
        else:
            scanner = BleakScanner(on_detect, bluez={"adapter": self.adapter})
        try:
            await scanner.start()
        except (BleakError, DBusError, OSError, EOFError) as exc:
            raise DeviceIOError(f"cannot scan on {self.adapter}: {exc}") from exc
        return scanner

    async def stop(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            await scanner.stop()
        except (BleakError, DBusError, OSError, EOFError) as exc:
            # The adapter may already be gone; the scan is over either way.
            log.debug("ble %s: stopping the scan: %s", self.adapter, exc)
