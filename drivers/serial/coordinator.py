"""One coordinator per serial scale: polls on a fixed cadence, fans out to points, runs tare and
zero; the port is shared through a `PortLink` that serialises every request on it.

A scale that stops answering, or whose USB adapter is unplugged, is reported offline once; the
port is closed and reopened with capped, jittered backoff until the adapter is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping

from drivers.base import CommandResult
from drivers.errors import CodecError, CommandRejected, DeviceIOError, DeviceRejected
from drivers.polling import PollingCoordinator
from drivers.serial.line import SerialLine
from drivers.serial.mtsics import (
    Done,
    OutOfRange,
    Refused,
    Reply,
    ScaleError,
    Weight,
    decode_reply,
    encode_request,
    reply_matches,
)
from drivers.serial.points import Keg, LoadState, fan_out, keg_for, weight_in
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth
from edge_agent.messages import Command, Event, Severity
from firmware_profiles.schema import Profile

log = logging.getLogger(__name__)

_ACTION_REQUEST = {"tare": "T", "zero": "Z", "tare_immediate": "TI", "zero_immediate": "ZI"}


class PortLink:
    """One serial port and its lock: one request in flight, its reply read before the next."""

    def __init__(self, line: SerialLine, clock: Clock) -> None:
        self.line = line
        self.clock = clock
        self.lock = asyncio.Lock()

    async def transact(self, request: bytes, timeout_s: float) -> Reply:
        async with self.lock:
            if not self.line.is_open:
                self.line.close()
                self.line.open()
            self.line.discard_input()
            self.line.write_line(request)
            deadline = self.clock.monotonic() + timeout_s
            while True:
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    raise DeviceIOError(f"no reply within {timeout_s:g} s")
                reply = decode_reply(await self.line.read_line(left))
                if reply_matches(request, reply):
                    return reply
                # a late answer to an earlier, timed-out request: not ours, keep reading

    def reset(self) -> None:
        """Close after an I/O failure; the next transaction reopens (the adapter may be new)."""
        self.line.close()


def _raise_for(reply: Reply) -> None:
    if isinstance(reply, ScaleError):
        raise DeviceRejected(f"scale reported a {reply.kind} error (E{reply.kind[0].upper()})")
    if isinstance(reply, Refused):
        raise DeviceRejected(
            "scale busy or command not executable" if reply.busy else "bad parameter"
        )


class ScaleCoordinator(PollingCoordinator):
    def __init__(
        self,
        device: DeviceConfig,
        profile: Profile,
        link: PortLink,
        bus: Bus,
        clock: Clock,
        health: DeviceHealth,
        *,
        params: Mapping[str, float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        assert profile.serial is not None
        section = profile.serial
        super().__init__(
            device.id,
            max(device.poll_interval_s, section.min_poll_interval_s),
            clock,
            health,
            rng=rng,
        )
        self.device = device
        self.section = section
        self.link = link
        self.bus = bus
        self.keg: Keg | None = keg_for(self.section.keg, params or {})
        self.request = encode_request(self.section.request)
        self.load: LoadState = "normal"
        self.weight_kg: float | None = None
        self.rejected = 0  # ES/ET/EL and refusals: the scale answered but not with a weight
        self._rejected_logged = False

    async def poll_once(self) -> None:
        """One request and its readings; raises DeviceIOError, counts everything else (a scale
        that answered with bad data or a refusal is online: the run loop marks it so)."""
        now = self.clock.time()
        try:
            reply = await self.link.transact(self.request, self.section.timeout_s)
            _raise_for(reply)
            if not isinstance(reply, Weight | OutOfRange):
                raise CodecError(f"unexpected reply {reply!r} to {self.section.request}")
            out = fan_out(reply, self.section, self.keg, self.device.id, now, self.weight_kg)
        except CodecError as exc:
            self.health.bad_data(self.clock.time(), exc)
            return
        except DeviceRejected as exc:
            self._note_rejected(exc)
            return
        self._rejected_logged = False
        if out.weight_kg is not None:
            self.weight_kg = out.weight_kg
        await self._load_changed(out.load, now)
        if out.readings:
            await self.bus.publish_many(out.readings)

    def _note_rejected(self, exc: DeviceRejected) -> None:
        self.rejected += 1
        self.health.errors += 1
        self.health.last_error = f"{type(exc).__name__}: {exc}"
        self.health.last_error_at = self.clock.time()
        if not self._rejected_logged:
            self._rejected_logged = True
            log.warning("%s: %s (counted until the next good reading)", self.device.id, exc)

    async def _load_changed(self, load: LoadState, now: float) -> None:
        if load == self.load:
            return
        previous, self.load = self.load, load
        msg = f"{self.device.display_name}: load {load}" + (
            f" (was {previous})" if load == "normal" else ""
        )
        log.info("%s: load %s", self.device.id, load)
        await self.bus.publish(
            Event(
                f"scale.{load}",
                now,
                self.device.id,
                Severity.INFO if load == "normal" else Severity.WARNING,
                msg,
                {"previous": previous},
            )
        )

    async def connect(self) -> None:
        """The link opens the port on its first transaction (and reopens it after a reset)."""

    async def poll(self) -> None:
        await self.poll_once()

    def after_failure(self, exc: DeviceIOError | DeviceRejected) -> None:
        self.link.reset()

    async def execute(self, command: Command) -> CommandResult:
        """Tare and zero: never raises; a refusal or an offline scale is a failed result."""
        spec = next((c for c in self.section.commands if c.name == command.name), None)
        if spec is None:
            known = ", ".join(c.name for c in self.section.commands) or "none"
            return CommandResult(False, error=f"unknown command {command.name!r} (known: {known})")
        if command.args:
            return CommandResult(False, error=f"{command.name} takes no arguments")
        try:
            request = encode_request(_ACTION_REQUEST[spec.action])
            reply = await self.link.transact(request, self.section.command_timeout_s)
            _raise_for(reply)
        except CommandRejected as exc:
            return CommandResult(False, error=str(exc))
        except DeviceIOError as exc:
            self.link.reset()
            return CommandResult(False, error=f"scale not reachable: {exc}")
        except (DeviceRejected, CodecError) as exc:
            return CommandResult(False, error=str(exc))
        if isinstance(reply, OutOfRange):
            side = "above" if reply.over else "below"
            return CommandResult(
                False, error=f"{spec.action} refused: load {side} the allowed range"
            )
        if isinstance(reply, Weight):
            unit = next((p.unit for p in self.section.points if p.source == "weight"), "kg")
            try:
                return CommandResult(True, value=weight_in(reply, unit))
            except CodecError as exc:
                return CommandResult(True, error=str(exc))
        assert isinstance(reply, Done)
        return CommandResult(True)
