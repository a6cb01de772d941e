"""How an area (rules, sync, the drivers' API...) plugs into the agent.

An area is given an `AreaContext` (the venue's settings and profile library, the bus, the
store's writer and a way to read it, the clock and device health) and returns an `Area`: the
services the supervisor runs, the routes it adds to the local API, and the state those routes
share with its services as `web.AppKey` entries. No area sees the agent, and the agent knows
an area only as this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import VenueConfig
from edge_agent.health import HealthRegistry
from edge_agent.store.reader import StoreReader
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter
from edge_agent.supervisor import Service
from firmware_profiles.loader import ProfileLibrary

# Adds an area's handlers to the local API's application (before it starts serving).
Routes = Callable[[web.Application], None]


@dataclass(frozen=True)
class AreaContext:
    config: VenueConfig
    library: ProfileLibrary
    bus: Bus
    writer: StoreWriter
    clock: Clock
    health: HealthRegistry
    version: str

    @property
    def store_path(self) -> str:
        return self.config.storage.path

    def reader(self) -> StoreReader:
        """A read-only WAL reader of the store (the caller closes it); never blocks the writer."""
        return StoreReader(self.store_path)

    def read_connection(self) -> sqlite3.Connection:
        """A raw read-only connection, for areas that query their own tables."""
        return connect(self.store_path, readonly=True)


@dataclass(frozen=True)
class Area:
    name: str
    services: Sequence[Service] = ()
    routes: Sequence[Routes] = ()
    # Put into the local API's application before any route is added.
    shared: Mapping[web.AppKey[Any], Any] = field(default_factory=dict)


# Builds an area from the context; raises ValidationError to refuse to start.
AreaFactory = Callable[[AreaContext], Area]
