"""`beerflow-edge discover --ble`: listen for a while and propose `[[devices]]` entries for every
advertising sensor a library profile recognises (the advert must also decode)."""

from __future__ import annotations

import asyncio
import contextlib

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from dbus_fast import DBusError

from drivers.ble.advertisement import Advertisement
from drivers.ble.backend import to_advertisement
from drivers.ble.codec import decode, matches
from drivers.errors import CodecError, DeviceIOError
from firmware_profiles.loader import load_library
from firmware_profiles.schema import Profile


def recognise(adv: Advertisement, profiles: list[Profile]) -> Profile | None:
    """The first profile whose match criteria hold and whose decoder reads the advert;
    real products before simulator-only profiles."""
    ranked = sorted(profiles, key=lambda p: (p.verification == "simulator_only", p.id))
    for prof in ranked:
        sec = prof.ble
        if sec is None or sec.encrypted or not matches(sec.match, adv):
            continue
        try:
            decode(sec, adv)
        except CodecError:
            continue
        return prof
    return None


async def discover(adapter: str, seconds: float) -> list[dict[str, object]]:
    """Proposals sorted strongest signal first: id, profile, address, label (with RSSI)."""
    profiles = [p for p in load_library().profiles.values() if p.transport == "ble"]
    latest: dict[str, Advertisement] = {}
    found: dict[str, tuple[Profile, Advertisement]] = {}

    def on_detect(device: BLEDevice, data: AdvertisementData) -> None:
        adv = to_advertisement(device, data)
        if adv.name == "" and adv.address in latest:
            adv = Advertisement(
                adv.address,
                adv.rssi,
                latest[adv.address].name,
                adv.manufacturer_data,
                adv.service_data,
                adv.service_uuids,
            )
        latest[adv.address] = adv
        prof = recognise(adv, profiles)
        if prof is not None:
            found[adv.address] = (prof, adv)

    # Active scan: some sensors (Govee, Inkbird, ThermoPro) put their name in the scan response.
    scanner = BleakScanner(on_detect, bluez={"adapter": adapter})
    try:
        await scanner.start()
    except (BleakError, DBusError, OSError, EOFError) as exc:
        raise DeviceIOError(f"cannot scan on {adapter}: {exc}") from exc
    try:
        await asyncio.sleep(seconds)
    finally:
        with contextlib.suppress(BleakError, DBusError, OSError, EOFError):
            await scanner.stop()
    out: list[dict[str, object]] = []
    for address, (prof, adv) in sorted(found.items(), key=lambda kv: -kv[1][1].rssi):
        suffix = address.replace(":", "")[-4:].lower()
        out.append(
            {
                "id": f"{prof.id.split('-')[0]}-{suffix}",
                "profile": prof.id,
                "address": address,
                # The RSSI helps tell sensors apart while walking round the venue.
                "label": f"{adv.name or prof.model} ({adv.rssi} dBm at discovery)",
            }
        )
    return out
