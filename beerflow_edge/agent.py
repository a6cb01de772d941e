"""The agent: builds the bus, the store writer, the drivers and the API from a venue config and
hands them to the supervisor in start order (consumers first)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any, TypeVar

from aiohttp import web

from beerflow_edge.api import LocalApi
from drivers.base import DriverContext
from drivers.command_router import CommandRouter
from drivers.registry import build_services
from edge_agent import __version__
from edge_agent.area import Area, AreaContext, AreaFactory
from edge_agent.bus import Bus
from edge_agent.clock import Clock, SystemClock
from edge_agent.config.model import DeviceConfig, VenueConfig
from edge_agent.health import HealthRegistry
from edge_agent.messages import Event, Severity
from edge_agent.metrics import AgentMetrics
from edge_agent.sd_notify import Notifier, watchdog_interval_s
from edge_agent.store.retention import RetentionPolicy, apply_retention
from edge_agent.store.writer import StoreWriter, WriterStats
from edge_agent.supervisor import Service, Supervisor
from edge_agent.timesync import ClockSync, clock_sync, warn_if_unsynchronised
from edge_agent.watchdog import Heartbeat, WriterProgress
from firmware_profiles.loader import ProfileLibrary

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0
T = TypeVar("T")


def area_factories() -> list[AreaFactory]:
    """Every area, in start order. Imported here, when the agent builds its services, so that
    importing the agent stays light."""
    from beerflow_edge import history_api
    from cloud_sync import area as sync
    from integrations.homeassistant import area as home_assistant
    from rules import area as rules

    return [rules.build, history_api.area, sync.build, home_assistant.build]


class Agent:
    def __init__(
        self,
        config: VenueConfig,
        library: ProfileLibrary,
        *,
        clock: Clock | None = None,
        extra_services: list[Service] | None = None,
    ) -> None:
        self.config = config
        self.library = library
        self.clock = clock or SystemClock()
        self.bus = Bus()
        self.health = HealthRegistry()
        self.metrics = AgentMetrics()
        self.metrics.watch(self.health, self.bus)
        os.makedirs(os.path.dirname(config.storage.path) or ".", exist_ok=True)
        self.writer = StoreWriter(
            config.storage.path,
            telemetry_sync=config.storage.telemetry_sync,
            clock=self.clock,
            on_commit=self._on_commit,
        )
        self.writer.attach(self.bus)
        self.supervisor = Supervisor(self.clock, on_event=self.bus.publish)
        self.metrics.watch_services(lambda: self.supervisor.states)
        self.api_ready = asyncio.Event()
        self.api = LocalApi(self, on_ready=self.api_ready.set)
        self.started_at = self.clock.time()
        self._extra = extra_services or []
        # What every area is given: the agent itself is no area's business.
        self.context = AreaContext(
            config, library, self.bus, self.writer, self.clock, self.health, __version__
        )
        # Built with the services (an area may refuse to start); the local API takes its
        # routes and shared state from here when it starts, after them.
        self.areas: list[Area] | None = None
        self.drivers = DriverContext(
            config, self.bus, self.clock, self.health, store=self.writer, profiles=library.profiles
        )
        self.commands = CommandRouter(self.drivers, self.bus, self.clock)
        # Under systemd (Type=notify): READY once the API answers, then watchdog pings only
        # while the loop and the store writer make progress.
        self.heartbeat = Heartbeat(
            Notifier.from_env(),
            watchdog_interval_s(),
            [("store writer", WriterProgress(self.writer))],
            self.api_ready,
            status=self._status_line,
        )

    def _on_commit(self, stats: WriterStats, readings: int, events: int, seconds: float) -> None:
        self.metrics.on_commit(readings, events, seconds)

    # ---- lifecycle ----------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        s = self.config.storage
        policy = RetentionPolicy(
            s.raw_retention_days, s.rollup_retention_days, s.rollup_bucket_s, s.event_retention_days
        )
        while True:
            now = self.clock.time()
            await self.writer.run_job(functools.partial(apply_retention, now=now, policy=policy))
            await self.clock.sleep(RETENTION_EVERY_S)

    async def _stop_store(self) -> None:
        self.bus.close()
        await self.writer.submit(self._event("agent.stopped", "agent stopped"))
        await self.writer.stop()

    def _event(self, kind: str, message: str, **data: Any) -> Event:
        return Event(kind, self.clock.time(), "agent", Severity.INFO, message, data)

    def services(self) -> list[list[Service]]:
        store = [Service("store-writer", self.writer.run, stop=self._stop_store)]
        support = [
            Service("local-api", self.api.run, restart=True),
            Service("retention", self._retention_loop, restart=True),
            *self._extra,
        ]
        support.append(Service("command-router", self.commands.run, restart=True))
        if self.heartbeat.notifier.enabled:
            support.append(Service("watchdog", self.heartbeat.run, stop=self.heartbeat.stop))
        support += self._optional_services()
        devices = []
        for dev in self.config.devices:
            profile = self.library.get(dev.profile)
            assert profile is not None  # the config loader guarantees it
            devices.append((dev, profile))
        return [store, support, build_services(self.drivers, devices)]

    def _optional_services(self) -> list[Service]:
        """Areas that add themselves: rules and HACCP, history, cloud sync (once provisioned)."""
        self.areas = [build(self.context) for build in area_factories()]
        return [svc for area in self.areas for svc in area.services]

    def install_routes(self, app: web.Application) -> None:
        """Put every area's shared state, then its routes, into the local API's application."""
        if self.areas is None:
            raise RuntimeError("the areas are built with the services, before the local API")
        for area in self.areas:
            for key, value in area.shared.items():
                app[key] = value
        for area in self.areas:
            for add in area.routes:
                add(app)

    def shared(self, key: web.AppKey[T]) -> T:
        """The state an area shares with its routes (its running service, say)."""
        for area in self.areas or ():
            if key in area.shared:
                return area.shared[key]  # type: ignore[no-any-return]
        raise KeyError(key)

    async def run(self, *, install_signals: bool = True) -> int:
        await self.writer.open()
        if install_signals:
            self.supervisor.install_signal_handlers()
        if warn_if_unsynchronised() is ClockSync.UNSYNCHRONISED:
            await self.writer.submit(
                Event(
                    "agent.clock_unsynchronised",
                    self.clock.time(),
                    "agent",
                    Severity.WARNING,
                    "system clock not synchronised: record times may be wrong",
                    {},
                )
            )
        await self.writer.submit(
            self._event(
                "agent.started",
                f"agent {__version__} started for venue {self.config.venue.id}",
                devices=len(self.config.devices),
                version=__version__,
            )
        )
        log.info(
            "agent %s: venue %s, %d devices, store %s",
            __version__,
            self.config.venue.id,
            len(self.config.devices),
            self.config.storage.path,
        )
        await self.supervisor.run(self.services())
        return 1 if self.supervisor.failed else 0

    def stop(self) -> None:
        self.supervisor.request_stop()

    def _status_line(self) -> str:
        devices = self.health.all()
        up = sum(1 for h in devices if h.connected)
        return (
            f"{up}/{len(self.config.devices)} devices connected, "
            f"{self.writer.stats.readings} readings stored"
        )

    # ---- reports for the API ------------------------------------------------------------

    def device_config(self, device_id: str) -> DeviceConfig | None:
        """A configured device, or one a driver added at run time (MQTT auto_devices)."""
        return self.config.device(device_id) or self.drivers.added.get(device_id)

    def device_report(self) -> list[dict[str, Any]]:
        out = []
        for dev in (*self.config.devices, *self.drivers.added.values()):
            h = self.health.get(dev.id)
            entry: dict[str, Any] = {
                "id": dev.id,
                "label": dev.display_name,
                "zone": dev.zone,
                "profile": dev.profile,
                "enabled": dev.enabled,
            }
            if h is not None:
                entry.update({k: v for k, v in h.as_dict().items() if k not in ("device_id",)})
            out.append(entry)
        return out

    def health_report(self) -> dict[str, Any]:
        devices = self.health.all()
        st = self.writer.stats
        return {
            # Green means data is flowing: every service running, none crashed or wedged.
            "status": "ok"
            if not (self.supervisor.failed or self.supervisor.degraded)
            else "degraded",
            "version": __version__,
            "venue": {
                "id": self.config.venue.id,
                "name": self.config.venue.name,
                "timezone": self.config.venue.timezone,
            },
            "uptime_s": round(self.clock.time() - self.started_at, 1),
            "clock": clock_sync().value,
            "devices": {
                "total": len(self.config.devices) + len(self.drivers.added),
                "connected": sum(1 for h in devices if h.connected),
            },
            "store": {
                "path": self.config.storage.path,
                "readings_accepted": st.readings,
                "events_accepted": st.events,
                "commits": st.commits,
                "failed_commits": st.failed_commits,
                "queued": len(self.writer.channel),
            },
            "bus": {
                s.name: {"queued": len(s.channel), "dropped": s.dropped, "stalls": s.stalls}
                for s in self.bus.subscriptions
            },
            "tasks": sorted(self.supervisor.tasks),
            "services": {n: st.report() for n, st in sorted(self.supervisor.states.items())},
            "degraded": self.supervisor.degraded,
        }
