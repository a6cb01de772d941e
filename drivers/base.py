"""What every transport's driver gets from the agent, and what it gives back."""

from __future__ import annotations

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


Devices = list[tuple[DeviceConfig, Profile]]
