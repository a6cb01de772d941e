"""Per-device health: connected, last seen, error counts, last error. An outage is logged once
when it starts and once when it ends, not once per failed poll."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("edge_agent.devices")


@dataclass
class DeviceHealth:
    device_id: str
    transport: str
    connected: bool = False
    last_seen: float | None = None
    polls: int = 0
    errors: int = 0
    malformed: int = 0
    transient: int = 0  # failed polls that did not start an outage (one CRC error, one timeout)
    # Messages whose own time was too far from the box's (stamped on arrival instead).
    clock_skew: int = 0
    stale_replies: int = 0  # replies answering another request (wrong transaction id), dropped
    last_error: str | None = None
    last_error_at: float | None = None
    outage_since: float | None = None
    _malformed_logged: bool = field(default=False, repr=False)
    _skew_logged: bool = field(default=False, repr=False)

    def ok(self, now: float) -> None:
        if self.outage_since is not None:
            log.info("%s: back online after %.1f s", self.device_id, now - self.outage_since)
            self.outage_since = None
        self.connected = True
        self.last_seen = now
        self.polls += 1

    def failed(self, now: float, error: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self.last_error_at = now
        if self.outage_since is None:
            self.outage_since = now
            log.warning("%s: offline: %s", self.device_id, self.last_error)
        self.connected = False

    def glitch(self, now: float, error: BaseException) -> None:
        """A failed poll that is not (yet) an outage: counted, not logged, still connected."""
        self.errors += 1
        self.transient += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self.last_error_at = now

    def bad_data(self, now: float, error: BaseException) -> None:
        self.malformed += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self.last_error_at = now
        if not self._malformed_logged:
            self._malformed_logged = True
            log.warning(
                "%s: malformed data (counted, further ones not logged): %s", self.device_id, error
            )

    def skewed(self, now: float, device_ts: float) -> None:
        self.clock_skew += 1
        if not self._skew_logged:
            self._skew_logged = True
            log.warning(
                "%s: device clock is %+.0f s off the box's; stamping on arrival "
                "(counted, further ones not logged)",
                self.device_id,
                device_ts - now,
            )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_malformed_logged", None)
        d.pop("_skew_logged", None)
        return d


class HealthRegistry:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceHealth] = {}

    def register(self, device_id: str, transport: str) -> DeviceHealth:
        h = self._devices.get(device_id)
        if h is None:
            h = self._devices[device_id] = DeviceHealth(device_id, transport)
        return h

    def get(self, device_id: str) -> DeviceHealth | None:
        return self._devices.get(device_id)

    def all(self) -> list[DeviceHealth]:
        return [self._devices[k] for k in sorted(self._devices)]
