"""Fetching the agent's state and turning it into messages for the app.

One worker polls at a modest interval (the agent pushes nothing yet); every result becomes a
message, so widgets never call the API themselves. When the socket is gone it retries with a
capped backoff and says so; the first successful fetch after that says it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from textual.message import Message

from tui.api_client import (
    AgentClient,
    Alarm,
    ChecksDue,
    Device,
    HaccpCheck,
    HaccpUnit,
    Health,
    NotAvailable,
    Reading,
    Rejected,
    StaffMember,
    SyncStatus,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Snapshot:
    health: Health
    devices: tuple[Device, ...]
    latest: tuple[Reading, ...]
    # None: the agent has no such service (route missing), as opposed to "nothing to show".
    alarms: tuple[Alarm, ...] | None
    haccp: ChecksDue | None
    sync: SyncStatus | None
    units: tuple[HaccpUnit, ...] = ()
    recent_alarms: tuple[Alarm, ...] = ()
    staff: tuple[StaffMember, ...] | None = None  # None: an agent without the staff list

    @property
    def checks(self) -> tuple[HaccpCheck, ...] | None:
        return None if self.haccp is None else self.haccp.checks

    @property
    def agent_now(self) -> float | None:
        """The agent's clock as seen in its newest reading (the box's clock may differ)."""
        return max((r.ts for r in self.latest), default=None)


class AgentSnapshot(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class AgentDown(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class HistoryLoaded(Message):
    def __init__(self, device: str, values: list[float]) -> None:
        super().__init__()
        self.device = device
        self.values = values


async def _optional(call: Callable[[], Awaitable[T]]) -> T | None:
    try:
        return await call()
    except (NotAvailable, Rejected):
        return None


async def fetch_snapshot(client: AgentClient) -> Snapshot:
    health, devices, latest = await asyncio.gather(
        client.health(), client.devices(), client.latest()
    )
    alarms, checks, sync, units, recent, staff = await asyncio.gather(
        _optional(client.alarms),
        _optional(client.haccp_checks_due),
        _optional(client.sync_status),
        _optional(client.haccp_units),
        _optional(client.alarm_history),
        _optional(client.staff),
    )
    return Snapshot(
        health,
        tuple(devices),
        tuple(latest),
        None if alarms is None else tuple(alarms),
        checks,
        sync,
        tuple(units or ()),
        tuple(recent or ()),
        None if staff is None else tuple(staff),
    )


def backoff(attempt: int, first: float = 0.25, cap: float = 3.0) -> float:
    return float(min(cap, first * 2 ** min(attempt, 10)))
