"""A token bucket per source address: `burst` requests at once, then `per_minute`. Pure: the
caller passes the time. Bounded: sources idle long enough to be full again are forgotten."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SOURCES = 10_000


@dataclass
class RateLimiter:
    burst: float = 10.0
    per_minute: float = 10.0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def take(self, source: str, now: float) -> float:
        """0 if the request may go on; else the seconds until it may (Retry-After)."""
        rate = self.per_minute / 60.0
        tokens, at = self._buckets.get(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * rate)
        if tokens >= 1.0:
            self._remember(source, tokens - 1.0, now)
            return 0.0
        self._remember(source, tokens, now)
        return (1.0 - tokens) / rate

    def _remember(self, source: str, tokens: float, now: float) -> None:
        if source not in self._buckets and len(self._buckets) >= MAX_SOURCES:
            full_after = self.burst / (self.per_minute / 60.0)
            for k, (_, at) in list(self._buckets.items()):
                if now - at >= full_after:
                    del self._buckets[k]
            if len(self._buckets) >= MAX_SOURCES:  # all busy: the oldest goes
                del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]
        self._buckets[source] = (tokens, now)
