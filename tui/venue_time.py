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

    def _at(self, ts: float) -> dt.datetime:
        if self.zone is None:
            return dt.datetime.fromtimestamp(ts).astimezone()
        return dt.datetime.fromtimestamp(ts, self.zone)

    def hhmm(self, ts: float) -> str:
        if self.zone is None:
            return time.strftime("%H:%M", time.localtime(ts))
        return self._at(ts).strftime("%H:%M")

    def day(self, ts: float, locale: str = "en") -> str:
        """The venue's date in words, in the terminal's language (no C-locale dependence)."""
        d = self._at(ts)
        names = DAYS.get(locale, DAYS["en"]), MONTHS.get(locale, MONTHS["en"])
        return f"{names[0][d.weekday()]} {d.day} {names[1][d.month - 1]} {d.year}"

    def iso(self, ts: float) -> str:
        """For exports: the venue's local time with its offset, to the second."""
        return self._at(ts).isoformat(timespec="seconds")


DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
}
MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
}


# One terminal shows one venue: the app sets the zone as soon as the agent reports it.
VENUE_TIME = VenueTime()
