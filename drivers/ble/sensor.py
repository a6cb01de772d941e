"""One advertising sensor: decode its adverts, drop repeats, turn the rest into readings, and
keep its health (last seen; offline after `offline_after_s` of silence)."""

from __future__ import annotations

from drivers.ble.advertisement import Advertisement
from drivers.ble.codec import Parsers, decode_fields, has_payload, payload_key, to_points
from drivers.ble.dedupe import Deduper
from drivers.errors import CodecError, DeviceIOError
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth
from edge_agent.messages import Reading
from firmware_profiles.schema import Profile
from firmware_profiles.sections.ble import BleSection


class BleSensor:
    def __init__(self, device: DeviceConfig, profile: Profile, health: DeviceHealth) -> None:
        assert profile.ble is not None
        assert device.address is not None
        self.device = device
        self.section: BleSection = profile.ble
        self.address = device.address.upper()
        self.health = health
        self.bindkey = bytes.fromhex(device.bindkey) if device.bindkey else None
        # Kept for the sensor's lifetime: the parsers' replay and bindkey checks need history.
        self.parsers = Parsers(self.bindkey)
        self.deduper = Deduper(self.section.dedupe_window_s)
        self.units = {p.name: p.unit for p in self.section.points}
        self.handle: object | None = None  # the backend's device handle, for GATT
        self.adverts = 0

    def on_advert(self, adv: Advertisement, now: float, handle: object = None) -> list[Reading]:
        """Readings from one advert; [] for a repeat; garbage is counted, never raised."""
        self.adverts += 1
        if handle is not None:
            self.handle = handle
        if not has_payload(self.section, adv):
            # A scan response or RSSI-only update: the sensor is alive, nothing to decode.
            self.health.ok(now)
            return []
        key = payload_key(self.section, adv)
        if self.deduper.repeats(now, key):
            # the same bytes again: the kept parser must not take it for a replay or old packet
            self.health.ok(now)
            return []
        self.parsers.now = now
        try:
            fields = decode_fields(self.section, adv, self.bindkey, self.parsers)
        except CodecError as exc:
            self.health.bad_data(now, exc)
            return []
        self.health.ok(now)
        packet_id = fields.get("packet_id")
        pid = packet_id if isinstance(packet_id, int) and not isinstance(packet_id, bool) else None
        if not self.deduper.accept(now, pid, key):
            return []
        dev = self.device.id
        return [
            Reading(dev, name, v, now, self.units[name])
            for name, v in to_points(self.section, fields)
        ]

    def check_silence(self, now: float) -> bool:
        """Mark the sensor offline once it has been silent too long; True when it just went."""
        h = self.health
        if h.outage_since is not None:
            return False
        since = h.last_seen if h.last_seen is not None else self._registered_at
        if since is None or now - since <= self.section.offline_after_s:
            return False
        h.failed(now, DeviceIOError(f"no advertisement for {now - since:.0f} s"))
        return True

    _registered_at: float | None = None

    def start_watch(self, now: float) -> None:
        if self._registered_at is None:
            self._registered_at = now
