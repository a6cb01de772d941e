"""What the agent's own local API routes read of the agent, so they need not import it."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from drivers.base import DriverContext
from drivers.command_router import CommandRouter
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import DeviceConfig, VenueConfig
from edge_agent.metrics import AgentMetrics
from firmware_profiles.loader import ProfileLibrary


class AgentView(Protocol):
    config: VenueConfig
    library: ProfileLibrary
    clock: Clock
    bus: Bus
    metrics: AgentMetrics
    drivers: DriverContext
    commands: CommandRouter

    def health_report(self) -> dict[str, Any]: ...
    def device_report(self) -> list[dict[str, Any]]: ...
    def device_config(self, device_id: str) -> DeviceConfig | None: ...
    def install_routes(self, app: web.Application) -> None: ...
