"""The typed messages that cross every boundary inside the box: one frozen shape each."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

Value = float | int | bool | str


class Quality(enum.IntEnum):
    """How far a reading can be trusted; stored with it."""

    GOOD = 0
    UNCERTAIN = 1  # e.g. a scale still settling, a sensor reporting an error flag
    BACKFILLED = 2  # recovered from a device's own history after an outage


class Severity(enum.IntEnum):
    DEBUG = 0
    INFO = 1
    WARNING = 2
    ALARM = 3
    CRITICAL = 4


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one point of one device at one instant (unix seconds)."""

    device_id: str
    point: str
    value: Value
    ts: float
    unit: str = ""
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a device went offline, a command completed, an alarm changed.

    Events are critical records: they are committed with synchronous=FULL.
    """

    kind: str
    ts: float
    source: str
    severity: Severity = Severity.INFO
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Command:
    """An intent to change a device (from rules, the UI or the cloud) that expires if not run."""

    command_id: str
    device_id: str
    name: str
    args: dict[str, Value]
    origin: str
    issued_at: float
    expires_at: float


Message = Reading | Event | Command
