"""When a notification may go: quiet hours, the per-recipient rate limit, retry backoff. Pure."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence


def quiet_until(now: float, window: str, timezone: str) -> float | None:
    """If `now` falls in the local window "HH:MM-HH:MM" (it may cross midnight), when it ends."""
    if not window:
        return None
    a, b = window.split("-")
    tz = zoneinfo.ZoneInfo(timezone)
    local = dt.datetime.fromtimestamp(now, tz)

    def at(day: dt.date, hm: str) -> dt.datetime:
        h, m = hm.split(":")
        return dt.datetime.combine(day, dt.time(int(h) % 24, int(m)), tz)

    for day in (local.date() - dt.timedelta(days=1), local.date()):
        start, end = at(day, a), at(day, b)
        if end <= start:
            end = at(day + dt.timedelta(days=1), b)
        if start <= local < end:
            return end.timestamp()
    return None


def rate_limited_until(sent_at: Sequence[float], now: float, per_hour: int) -> float | None:
    """With `per_hour` sent in the last hour already, when the oldest of them leaves it."""
    recent = sorted(t for t in sent_at if now - 3600 < t <= now)
    if len(recent) < per_hour:
        return None
    return recent[len(recent) - per_hour] + 3600


def backoff(attempts: int, base_s: float, cap_s: float) -> float:
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))
