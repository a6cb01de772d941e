"""One coordinator per OPC-UA device: connect, resolve the profile's nodes, subscribe to data
changes (or poll when the server refuses subscriptions), reconnect and re-subscribe with capped
jittered backoff when the connection drops, and execute commands (writes and method calls).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from drivers.base import CommandResult
from drivers.errors import CodecError, CommandRejected, DeviceIOError, DeviceRejected
from drivers.opcua import codec
from drivers.opcua.backend import Security, UaSession
from drivers.opcua.certs import Identity
from edge_agent.backoff import Backoff
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.opcua_address import Address
from edge_agent.health import DeviceHealth
from edge_agent.messages import Command, Reading
from firmware_profiles.sections.opcua import OpcuaPoint, OpcuaSection

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0


def _stop_if_cancelled() -> None:
    """Python 3.11's wait_for (used inside asyncua) can swallow a cancellation; the request
    count on the task survives, so re-raise it here instead of looping on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class OpcuaCoordinator:
    def __init__(
        self,
        device_id: str,
        address: Address,
        security: Security,
        section: OpcuaSection,
        bus: Bus,
        clock: Clock,
        health: DeviceHealth,
        *,
        identity: Identity | None = None,
        pki_dir: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.device_id = device_id
        self.address = address
        self.security = security
        self.section = section
        self.bus = bus
        self.clock = clock
        self.health = health
        self.identity = identity
        self.pki_dir = pki_dir
        self.backoff = Backoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S, rng=rng)
        self.points: dict[str, OpcuaPoint] = {p.name: p for p in section.points}
        self.commands = {c.name: c for c in section.commands}
        self.session: UaSession | None = None
        self.mode: str = "disconnected"  # "subscription" | "polling" | "disconnected"
        self.connects = 0
        self._logged_missing = False
        # Values read just before subscribing: a subscription's first notification repeats
        # each of them, and is not a new reading.
        self._before_subscribe: dict[str, Any] = {}

    # ---- the connection loop -----------------------------------------------------------------

    async def run(self) -> None:
        while True:
            _stop_if_cancelled()
            try:
                await self._serve()
            except (DeviceIOError, DeviceRejected) as exc:
                self.health.failed(self.clock.time(), exc)
            finally:
                self.mode = "disconnected"
                session, self.session = self.session, None
                if session is not None:
                    await session.close()
            _stop_if_cancelled()
            await self.clock.sleep(self.backoff.next())

    async def _serve(self) -> None:
        session = UaSession(
            self.device_id,
            self.address,
            self.section,
            self.security,
            self.identity,
            self.pki_dir,
        )
        self.session = session
        await session.open()
        await session.resolve()
        if session.missing and not self._logged_missing:
            self._logged_missing = True
            log.warning(
                "%s: nodes not found on the device, skipped: %s",
                self.device_id,
                ", ".join(session.missing),
            )
        self._before_subscribe = {}
        await self.read_all(session, remember=True)
        self.backoff.reset()
        self.connects += 1
        refused = await session.subscribe(self._on_change)
        if refused is None:
            self.mode, interval = "subscription", self.section.refresh_interval_s
        else:
            self.mode, interval = "polling", self.section.polling_interval_s
            log.info(
                "%s: subscriptions refused (%s); polling every %g s",
                self.device_id,
                refused,
                interval,
            )
        while True:
            _stop_if_cancelled()
            if await self._lost_within(session, interval):
                raise DeviceIOError("connection lost")
            await self.read_all(session)

    async def _lost_within(self, session: UaSession, seconds: float) -> bool:
        """Wait `seconds` of the clock; True as soon as the connection drops."""
        lost = asyncio.ensure_future(session.lost.wait())
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            done, _ = await asyncio.wait({lost, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            timer.cancel()
        return lost in done

    # ---- readings ----------------------------------------------------------------------------

    async def read_all(self, session: UaSession, *, remember: bool = False) -> list[Reading]:
        rows = await session.read()
        now = self.clock.time()
        out = []
        for name, raw, bad in rows:
            if remember and bad is None:
                self._before_subscribe[name] = raw
            reading = self._reading(name, raw, bad, now)
            if reading is not None:
                out.append(reading)
        self.health.ok(now)
        if out:
            await self.bus.publish_many(out)
        return out

    def _reading(self, name: str, raw: Any, bad: str | None, now: float) -> Reading | None:
        point = self.points[name]
        try:
            if bad is not None:
                raise CodecError(f"{name}: device reports {bad}")
            value = codec.decode_value(point, raw)
        except CodecError as exc:
            self.health.bad_data(now, exc)
            return None
        return Reading(self.device_id, name, value, now, point.unit)

    async def _on_change(self, name: str, raw: Any, good: bool) -> None:
        if name in self._before_subscribe:
            # the first notification for this node: skip it when it repeats what was read
            if good and self._before_subscribe.pop(name) == raw:
                return
            self._before_subscribe.pop(name, None)
        now = self.clock.time()
        reading = self._reading(name, raw, None if good else "a bad status", now)
        if reading is not None:
            self.health.ok(now)
            await self.bus.publish(reading)

    # ---- commands ----------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        spec = self.commands.get(command.name)
        if spec is None:
            known = ", ".join(sorted(self.commands)) or "none"
            return CommandResult(False, error=f"unknown command {command.name!r} (known: {known})")
        try:
            if spec.point is None:
                assert spec.method is not None
                args = codec.call_args(spec, command.args)
                session = self._live()
                out = await session.call(spec.object, spec.method, args)
                value = out[0] if isinstance(out, list) and out else out
                return CommandResult(True, value if isinstance(value, int | float | str) else None)
            point = self.points[spec.point]
            wanted = codec.write_value(spec, point, command.args)
            session = self._live()
            raw = codec.raw_for_node(point, wanted, session.variants[point.name])
            await session.write(point.name, raw)
            if not spec.readback:
                return CommandResult(True, wanted)
            got = codec.decode_value(point, await session.read_one(point.name))
            await self.bus.publish(
                Reading(self.device_id, point.name, got, self.clock.time(), point.unit)
            )
            if not _same(got, wanted):
                return CommandResult(False, got, f"device reports {got!r} after writing {wanted!r}")
            return CommandResult(True, got)
        except (CommandRejected, DeviceRejected, DeviceIOError, CodecError) as exc:
            return CommandResult(False, error=str(exc))

    def _live(self) -> UaSession:
        session = self.session
        if session is None or session.device is None or session.lost.is_set():
            raise DeviceIOError("device offline")
        return session


def _same(got: object, wanted: object) -> bool:
    """Read-back equality, allowing for a Float node's rounding."""
    if isinstance(got, int | float) and isinstance(wanted, int | float):
        if isinstance(got, bool) or isinstance(wanted, bool):
            return got is wanted
        return abs(float(got) - float(wanted)) <= 1e-3 * max(1.0, abs(float(wanted)))
    return got == wanted
