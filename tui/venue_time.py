"""Times shown to staff are the venue's wall-clock times, whatever zone the terminal runs in.

The agent says which zone the venue keeps (`GET /health`); until it has, the machine's own
local time is the best guess.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo


class VenueTime:
    def __init__(self, zone: str = "") -> None:
        self.zone: zoneinfo.ZoneInfo | None = None
        self.set_zone(zone)

    def set_zone(self, name: str) -> None:
        if not name or (self.zone is not None and self.zone.key == name):
            return
        try:
            self.zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.zone = None

    def hhmm(self, ts: float) -> str:
        if self.zone is None:
            return time.strftime("%H:%M", time.localtime(ts))
        return dt.datetime.fromtimestamp(ts, self.zone).strftime("%H:%M")


# One terminal shows one venue: the app sets the zone as soon as the agent reports it.
VENUE_TIME = VenueTime()
