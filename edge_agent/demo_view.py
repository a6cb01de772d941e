"""What `make demo` prints while it runs: each event worth seeing as it happens (an alarm
raised, acknowledged, a corrective action, cleared; a notification sent; the cloud reached or
lost; a HACCP check missed), and one compact status line, instead of a table of every device
reprinted every few seconds. On a terminal the status line is rewritten in place."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TextIO

from edge_agent.channel import Channel
from edge_agent.messages import Event

# Event kind -> the label the demo prints; anything else (routine events) stays quiet.
SHOWN = {
    "alarm.raised": "ALARM",
    "alarm.unacknowledged": "ALARM (still unacknowledged)",
    "alarm.acknowledged": "acknowledged",
    "alarm.corrective_action": "corrective action",
    "alarm.cleared": "cleared",
    "notify.sent": "notified",
    "notify.failed": "notification failed",
    "sync.online": "cloud",
    "sync.offline": "cloud unreachable",
    "haccp.missed_check": "HACCP check missed",
    "haccp.check_failed": "HACCP check failed",
    "agent.clock_unsynchronised": "clock",
}


@dataclass(frozen=True)
class Status:
    devices_up: int
    devices_total: int
    readings: int
    alarms_active: int
    outbox: int | None  # records waiting for the cloud; None without sync


def status_line(s: Status, now: float) -> str:
    cloud = (
        "cloud: not enrolled"
        if s.outbox is None
        else "cloud: up to date"
        if s.outbox == 0
        else f"cloud: {s.outbox} waiting"
    )
    alarms = f"{s.alarms_active} alarm{'s' if s.alarms_active != 1 else ''} active"
    return (
        f"{time.strftime('%H:%M:%S', time.localtime(now))}  "
        f"{s.devices_up}/{s.devices_total} devices online · {alarms} · "
        f"{s.readings:,} readings stored · {cloud}"
    )


def event_line(e: Event) -> str | None:
    label = SHOWN.get(e.kind)
    if label is None:
        return None
    return f"{time.strftime('%H:%M:%S', time.localtime(e.ts))}  {label:<20} {e.message}"


def outbox_rows(store: str) -> int | None:
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error:
        return None
    try:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


class DemoView:
    def __init__(
        self,
        status: Callable[[], Status],
        out: TextIO | None = None,
        every_s: float = 2.0,
        plain_every_s: float = 30.0,
    ) -> None:
        self.status = status
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        # On a terminal the line is redrawn in place; into a pipe or a log, now and then.
        self.every_s = every_s if self.tty else plain_every_s
        self.alarms: set[object] = set()
        self._drawn = False

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.out.write("\r\033[K")
            self._drawn = False

    def show_event(self, e: Event) -> None:
        # The rules engine names an alarm by its rule when it is raised and cleared.
        key = e.data.get("rule", e.message)
        if e.kind == "alarm.raised":
            self.alarms.add(key)
        elif e.kind == "alarm.cleared":
            self.alarms.discard(key)
        line = event_line(e)
        if line is not None:
            self._clear()
            self.out.write(line + "\n")
            self.out.flush()

    def show_status(self) -> None:
        line = status_line(replace(self.status(), alarms_active=len(self.alarms)), time.time())
        if self.tty:
            self.out.write("\r\033[K" + line)
            self._drawn = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    async def run(self, channel: Channel[Event]) -> None:
        loop = asyncio.get_running_loop()
        next_status = loop.time()
        try:
            while True:
                timeout = max(0.0, next_status - loop.time())
                try:
                    batch = await asyncio.wait_for(channel.get_batch(1000), timeout)
                except TimeoutError:
                    batch = []
                for e in batch:
                    self.show_event(e)
                if loop.time() >= next_status:
                    self.show_status()
                    next_status = loop.time() + self.every_s
        finally:
            # The venue as the demo leaves it, on a line of its own.
            self._clear()
            self.show_status()
            if self.tty:
                self.out.write("\n")
                self.out.flush()
