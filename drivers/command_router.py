"""The command bus's far end: commands from rules, the UI or the cloud reach their device's
driver, in order per device, unless they expired on the way; every outcome becomes an event
(so every write is on record, with its origin)."""

from __future__ import annotations

import asyncio
import logging

from drivers.base import CommandResult, DriverContext
from edge_agent.bus import Bus, Overflow
from edge_agent.clock import Clock
from edge_agent.messages import Command, Event, Severity

log = logging.getLogger(__name__)

# Commands waiting for one device; beyond this each new one is refused on record (a failed
# command.result event), not queued without end behind a device that stopped answering.
DEVICE_QUEUE = 100


class CommandRouter:
    def __init__(self, ctx: DriverContext, bus: Bus, clock: Clock) -> None:
        self.ctx = ctx
        self.bus = bus
        self.clock = clock
        # Commands are few and each matters: block the sender rather than drop one.
        self.sub = bus.subscribe("commands", (Command,), 1000, Overflow.BLOCK)
        self._queues: dict[str, asyncio.Queue[Command]] = {}
        # command id -> whoever waits for its outcome (a person at the local API)
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.refused = 0  # commands refused because their device's queue was full

    async def run(self) -> None:
        # The workers live in this group: one that fails takes the router down with it, and
        # the supervisor sees it and restarts the router, instead of a device whose commands
        # queue forever behind a dead worker.
        self._queues = {}
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                while True:
                    for cmd in await self.sub.channel.get_batch(100):
                        await self._enqueue(cmd)
        finally:
            self._tg = None

    async def _enqueue(self, cmd: Command) -> None:
        tg = self._tg
        if tg is None:
            result = CommandResult(False, error="the command router is not running")
            await self._publish(cmd, result)
            self._answer(cmd, result)
            return
        q = self._queues.get(cmd.device_id)
        if q is None:
            q = self._queues[cmd.device_id] = asyncio.Queue(DEVICE_QUEUE)
            # One worker per device keeps that device's commands in order without letting a
            # slow device delay another's.
            tg.create_task(self._worker(q), name=f"commands:{cmd.device_id}")
        try:
            q.put_nowait(cmd)
        except asyncio.QueueFull:
            self.refused += 1
            result = CommandResult(
                False, error=f"{q.qsize()} commands already wait for this device; refused"
            )
            await self._publish(cmd, result)
            self._answer(cmd, result)

    async def _worker(self, q: asyncio.Queue[Command]) -> None:
        while True:
            cmd = await q.get()
            result = await self._execute_safely(cmd)
            await self._publish(cmd, result)
            self._answer(cmd, result)

    def _answer(self, cmd: Command, result: CommandResult) -> None:
        waiter = self._waiting.pop(cmd.command_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    async def submit(self, cmd: Command) -> CommandResult:
        """Queue `cmd` behind the device's other commands and wait for its outcome, which is
        on record (a `command.result` event) before this returns."""
        if cmd.command_id in self._waiting:
            return CommandResult(False, error=f"command {cmd.command_id} is already queued")
        waiter: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[cmd.command_id] = waiter
        try:
            await self._enqueue(cmd)
            return await asyncio.shield(waiter)
        finally:
            if waiter.done():
                self._waiting.pop(cmd.command_id, None)

    async def _execute_safely(self, cmd: Command) -> CommandResult:
        """A driver that raises fails that one command, on record; the next one still runs."""
        try:
            return await self.execute(cmd)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a driver's bug: the command's result, not the worker's end
            log.exception("%s: command %s raised", cmd.device_id, cmd.name)
            return CommandResult(False, error=f"driver error: {type(exc).__name__}: {exc}")

    async def execute(self, cmd: Command) -> CommandResult:
        now = self.clock.time()
        if now > cmd.expires_at:
            return CommandResult(False, error=f"expired {now - cmd.expires_at:.1f} s before it ran")
        handler = self.ctx.commanders.get(cmd.device_id)
        if handler is None:
            return CommandResult(False, error=f"no driver accepts commands for {cmd.device_id!r}")
        return await handler.execute(cmd)

    async def _publish(self, cmd: Command, result: CommandResult) -> None:
        if not result.ok:
            log.warning(
                "%s: command %s (%s) failed: %s",
                cmd.device_id,
                cmd.name,
                cmd.command_id,
                result.error,
            )
        await self.bus.publish(
            Event(
                "command.result",
                self.clock.time(),
                cmd.device_id,
                Severity.INFO if result.ok else Severity.WARNING,
                f"{cmd.name} {'done' if result.ok else 'failed'}",
                {
                    "command_id": cmd.command_id,
                    "command": cmd.name,
                    "args": cmd.args,
                    "origin": cmd.origin,
                    "ok": result.ok,
                    "value": result.value,
                    "error": result.error,
                },
            )
        )
