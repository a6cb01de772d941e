"""The run loop every polled device shares: an aligned tick, capped jittered backoff, health.

A subclass supplies three hooks: `connect` (open what the device needs, if it is not open),
`poll` (one round of requests and their readings) and `after_failure` (drop what a failure
may have left half-open). The hooks raise the drivers' I/O errors (`DeviceIOError`, or
`DeviceRejected` where the device's refusal means it cannot be polled); anything else is a bug
and goes up to the supervisor.

A single failed poll (a CRC error on a noisy RS-485 line, one lost TCP segment) is counted in
the device's health and metrics but is not an outage: the outage starts after
`failures_before_outage` consecutive failures, is logged once, and its end is logged once (by
`DeviceHealth`). Polls are aligned to multiples of the interval so every device of a venue reads
in the same instant and the store commits them as one batch.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod

from drivers.errors import DeviceIOError, DeviceRejected
from edge_agent.backoff import Backoff
from edge_agent.clock import Clock
from edge_agent.health import DeviceHealth

FAILURES_BEFORE_OUTAGE = 3
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
# A device that is away is retried at least every this many poll intervals.
CAP_INTERVALS = 12


def next_tick(now: float, interval: float) -> float:
    """The first multiple of `interval` strictly after `now`."""
    return (math.floor(now / interval) + 1) * interval


class PollingCoordinator(ABC):
    """One device polled on a fixed cadence; see the module doc for the contract."""

    def __init__(
        self,
        device_id: str,
        interval_s: float,
        clock: Clock,
        health: DeviceHealth,
        *,
        rng: random.Random | None = None,
        failures_before_outage: int = FAILURES_BEFORE_OUTAGE,
    ) -> None:
        if failures_before_outage < 1:
            raise ValueError("failures_before_outage must be at least 1")
        self.device_id = device_id
        self.interval = interval_s
        self.clock = clock
        self.health = health
        self.failures_before_outage = failures_before_outage
        self.consecutive_failures = 0
        self._backoff = Backoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S, rng=rng)

    @abstractmethod
    async def connect(self) -> None:
        """Make sure the device can be polled (a no-op when it already can)."""

    @abstractmethod
    async def poll(self) -> None:
        """One round: read the device, publish what it said, count what was malformed."""

    def after_failure(self, exc: DeviceIOError | DeviceRejected) -> None:  # noqa: B027
        """Drop a connection a failure may have left half-open (default: nothing to drop)."""

    async def run(self) -> None:
        while True:
            try:
                await self.connect()
                await self.poll()
            except (DeviceIOError, DeviceRejected) as exc:
                self.after_failure(exc)
                await self.clock.sleep(self.note_failure(exc))
                continue
            self.note_success()
            now = self.clock.time()
            await self.clock.sleep(next_tick(now, self.interval) - now)

    def note_success(self) -> None:
        self.consecutive_failures = 0
        self._backoff.reset()
        self.health.ok(self.clock.time())

    def note_failure(self, exc: BaseException) -> float:
        """Count a failed poll; returns how long to wait before the next attempt."""
        self.consecutive_failures += 1
        now = self.clock.time()
        if self.consecutive_failures >= self.failures_before_outage or not self.health.connected:
            self.health.failed(now, exc)
        else:
            self.health.glitch(now, exc)
        return min(self._backoff.next(), max(self.interval, 1.0) * CAP_INTERVALS)
