"""What every transport's driver gets from the agent, and what it gives back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import DeviceConfig, VenueConfig
from edge_agent.health import HealthRegistry
from edge_agent.messages import Command, Value
from firmware_profiles.schema import Profile


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    value: Value | None = None  # what the device reports after the write, when read back
    error: str | None = None


class CommandHandler(Protocol):
    async def execute(self, command: Command) -> CommandResult:
        """Validate against the profile, write, optionally read back. Never raises for a bad
        command: a rejected or failed command is a result with ok=False and the reason."""
        ...


class CommitLog(Protocol):
    """The store writer, as a driver that acknowledges its peer after the commit sees it."""

    def barrier(self, *, patient: bool = True) -> asyncio.Future[int]:
        """Resolves once everything queued before it (e.g. readings on the bus) has committed."""
        ...

    def write_in_transaction(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """Rows that commit in the same transaction as the batch this lands in."""
        ...

    async def run_job(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """fn(conn) on the writer's connection, after what is queued before it."""
        ...


@dataclass
class DriverContext:
    config: VenueConfig
    bus: Bus
    clock: Clock
    health: HealthRegistry
    # device id -> the object that executes its commands
    commanders: dict[str, CommandHandler] = field(default_factory=dict)
    # per-transport shared resources (RS-485 line locks, broker connections, the BLE scanner)
    shared: dict[str, Any] = field(default_factory=dict)
    # The store, for drivers whose peer is told "received" only after the commit (MQTT).
    store: CommitLog | None = None
    # Devices a driver created at run time (MQTT auto_devices), by id.
    added: dict[str, DeviceConfig] = field(default_factory=dict)
    # Every known profile by id, for devices a driver creates at run time.
    profiles: dict[str, Profile] = field(default_factory=dict)


Devices = list[tuple[DeviceConfig, Profile]]
