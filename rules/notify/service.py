"""The notifier: sends due notification records, at least once, with backoff, within quiet
hours and a per-recipient rate limit; every attempt and outcome is an event.

Its state is the `notifications` table only: a `kill -9` mid-ladder loses nothing, and after a
restart whatever was pending (or in flight, never marked sent) goes again. The key
(alarm, step, recipient) keeps a replayed ladder from notifying twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from edge_agent.clock import Clock
from edge_agent.messages import Event, Severity
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter
from rules.notify import records
from rules.notify.model import Notify
from rules.notify.policy import backoff, quiet_until, rate_limited_until
from rules.notify.sender import Sender, apprise_send

log = logging.getLogger(__name__)

IDLE_S = 3600.0  # with nothing pending, look again at least this often


class Notifier:
    def __init__(
        self,
        writer: StoreWriter,
        clock: Clock,
        config: Notify,
        timezone: str = "UTC",
        publish: Callable[[Event], Awaitable[None]] | None = None,
        sender: Sender = apprise_send,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.config = config
        self.timezone = timezone
        self.publish = publish
        self.sender = sender
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        """New rows were committed (call on the loop)."""
        self._wake.set()

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = connect(self.writer.path, readonly=True)
        try:
            return fn(conn)
        finally:
            conn.close()

    async def run(self) -> None:
        while True:
            await self.step()
            nxt = await asyncio.to_thread(self._read, records.next_due)
            now = self.clock.time()
            wait = IDLE_S if nxt is None else max(0.0, min(IDLE_S, nxt - now))
            if wait <= 0:
                continue
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(wait))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, waker):
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t

    async def step(self) -> int:
        """Attempt every notification due now; returns how many were delivered."""
        now = self.clock.time()
        due: list[records.Pending] = await asyncio.to_thread(
            self._read, lambda c: records.due(c, now)
        )
        delivered = 0
        for n in due:
            delivered += await self._one(n, now)
        return delivered

    async def _one(self, n: records.Pending, now: float) -> int:
        cfg = self.config
        r = cfg.recipient(n.recipient)
        if r is None:
            await self.writer.transact(
                lambda c: records.mark_failed(c, n.id, "recipient not configured", None, now)
            )
            await self._event("notify.failed", Severity.WARNING, n, "recipient not configured")
            return 0
        window = r.quiet_hours if r.quiet_hours is not None else cfg.quiet_hours
        if n.priority != "critical" and n.kind != "test":
            quiet = quiet_until(now, window, self.timezone)
            if quiet is not None:
                await self.writer.transact(lambda c: records.defer(c, n.id, quiet))
                await self._event("notify.deferred", Severity.INFO, n, "quiet hours", until=quiet)
                return 0
        sent = await asyncio.to_thread(
            self._read, lambda c: records.sent_times(c, n.recipient, now - 3600)
        )
        until = rate_limited_until(sent, now, cfg.max_per_hour)
        if until is not None:
            await self.writer.transact(lambda c: records.defer(c, n.id, until))
            await self._event("notify.deferred", Severity.INFO, n, "rate limit", until=until)
            return 0
        try:
            ok, why = await self.sender(r.urls, n.title, n.body)
        except Exception as exc:  # a channel library's failure is this attempt's outcome
            ok, why = False, f"{type(exc).__name__}"
        if ok:
            await self.writer.transact(lambda c: records.mark_sent(c, n.id, self.clock.time()))
            self.sent += 1
            await self._event("notify.sent", Severity.INFO, n, "", attempt=n.attempts + 1)
            return 1
        self.failed_attempts += 1
        attempt = n.attempts + 1
        retry_at: float | None = now + backoff(attempt, cfg.retry_base_s, cfg.retry_cap_s)
        if now - n.created >= cfg.give_up_after_s:
            retry_at = None
        await self.writer.transact(lambda c: records.mark_failed(c, n.id, why, retry_at, now))
        kind = "notify.retry" if retry_at is not None else "notify.failed"
        sev = Severity.WARNING if retry_at is not None else Severity.ALARM
        if retry_at is None:
            log.error(
                "notify: gave up on %s for %s after %d attempts", n.step, n.recipient, attempt
            )
        await self._event(kind, sev, n, why, attempt=attempt, retry_at=retry_at)
        return 0

    async def _event(
        self, kind: str, sev: Severity, n: records.Pending, why: str, **extra: Any
    ) -> None:
        if self.publish is None:
            return
        data = {
            "notification": n.id,
            "alarm_id": n.alarm_id,
            "step": n.step,
            "recipient": n.recipient,
            "kind": n.kind,
            **extra,
        }
        if why:
            data["reason"] = why
        msg = f"{n.kind} {n.step} to {n.recipient}: {kind.split('.')[1]}" + (
            f" ({why})" if why else ""
        )
        await self.publish(Event(kind, self.clock.time(), f"notify:{n.recipient}", sev, msg, data))

    async def test_all(self) -> dict[str, tuple[bool, str]]:
        return await send_test(self.config, self.sender)


async def send_test(config: Notify, sender: Sender = apprise_send) -> dict[str, tuple[bool, str]]:
    """Send a test message to every configured recipient now (quiet hours do not apply)."""
    out: dict[str, tuple[bool, str]] = {}
    for r in config.recipients:
        try:
            out[r.id] = await sender(
                r.urls,
                "BeerFlow test notification",
                f"This is a test from your BeerFlow box to {r.name or r.id}. "
                "Alarm notifications will reach you here.",
            )
        except Exception as exc:  # reported per recipient, never a traceback
            out[r.id] = (False, type(exc).__name__)
    return out
