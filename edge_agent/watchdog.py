"""The supervisor's heartbeat to the systemd watchdog.

systemd restarts the agent when `WATCHDOG=1` stops arriving within WatchdogSec. A ping therefore
has to mean "working", not "the process exists": it is sent from the event loop (a wedged loop
sends nothing) and only while every progress check passes (the store writer committing what is
queued). Pings run on real time on purpose: the watchdog measures the wall clock, whatever clock
the agent's behaviour was given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence, Sized
from typing import Protocol

from edge_agent.sd_notify import Notifier

log = logging.getLogger(__name__)

ProgressCheck = tuple[str, Callable[[], bool]]


class _Stats(Protocol):
    commits: int
    failed_commits: int


class _Writer(Protocol):
    @property
    def stats(self) -> _Stats: ...
    @property
    def channel(self) -> Sized: ...


class WriterProgress:
    """True when the store writer is idle or has attempted a commit since the last check.

    A failing disk still counts as progress (the writer is retrying and /health says why; a
    restart would not help); a writer stuck inside SQLite with work queued does not.
    """

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self._last: tuple[int, int] | None = None

    def __call__(self) -> bool:
        st = self.writer.stats
        mark = (st.commits, st.failed_commits)
        queued = len(self.writer.channel)
        moved = mark != self._last
        self._last = mark
        return moved or queued == 0


class Heartbeat:
    def __init__(
        self,
        notifier: Notifier,
        watchdog_s: float | None,
        checks: Sequence[ProgressCheck],
        ready: asyncio.Event,
        status: Callable[[], str] | None = None,
    ) -> None:
        self.notifier = notifier
        self.watchdog_s = watchdog_s
        self.checks = list(checks)
        self.ready = ready
        self.status = status
        self.pings = 0
        self.withheld = 0
        self._stalled: set[str] = set()

    def beat(self) -> bool:
        """One heartbeat: ping if everything progressed; say once when something stalls."""
        stalled = {name for name, ok in self.checks if not ok()}
        for name in sorted(stalled - self._stalled):
            log.error("watchdog: %s made no progress; withholding the ping", name)
        for name in sorted(self._stalled - stalled):
            log.info("watchdog: %s progressing again", name)
        self._stalled = stalled
        if stalled:
            self.withheld += 1
            return False
        fields = ["WATCHDOG=1"]
        if self.status is not None:
            fields.append(f"STATUS={self.status()}")
        self.notifier.send(*fields)
        self.pings += 1
        return True

    async def run(self) -> None:
        await self.ready.wait()
        ready = ["READY=1"]
        if self.status is not None:
            ready.append(f"STATUS={self.status()}")
        self.notifier.send(*ready)
        if self.watchdog_s is None:
            await asyncio.Event().wait()
        assert self.watchdog_s is not None
        # systemd's advice: ping at half the period, so one late beat is not a restart.
        period = self.watchdog_s / 2
        while True:
            await asyncio.sleep(period)
            self.beat()

    async def stop(self) -> None:
        self.notifier.send("STOPPING=1")
        self.notifier.close()
