"""One coordinator per Modbus device: batched reads on a fixed cadence, fan-out to points.

The run loop (aligned tick, backoff, outage after a run of failures) is `PollingCoordinator`'s.
A block the device refuses with exception 02 is split until each piece is answered
(`spans.py`); the plan it learns is kept per device across restarts. What one block read is
published even when another block of the same poll failed.
A device that stops answering backs off on its own without holding anything up; devices on one
RS-485 bus share a lock and honour the inter-frame gap.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from contextlib import AbstractAsyncContextManager, nullcontext

from drivers.base import CommandResult
from drivers.errors import CodecError, CommandRejected, DeviceIOError, DeviceRejected
from drivers.modbus import spans
from drivers.modbus.backend import ModbusBackend
from drivers.modbus.codec import ReadBlock, decode_block, encode_point, plan_reads
from drivers.polling import PollingCoordinator
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth
from edge_agent.messages import Command, Reading
from firmware_profiles.schema import BIT_TABLES, ModbusCommand, ModbusPoint, Profile

log = logging.getLogger(__name__)
# The gap wait: the event loop sleeps until _BLOCK_S before the deadline (its timers overshoot
# by up to ~1 ms), a blocking sleep until _SPIN_S before it, then a busy-wait (see BusLock).
_BLOCK_S = 0.0025
_SPIN_S = 0.0001


class BusLock:
    """Serialises transactions on one physical RS-485 line and keeps the silent gap between them.

    The gap is a property of the wire, so it is kept in real time even when the agent runs on
    a manual clock (`clock` is accepted for compatibility and not used for the gap).

    The event loop cannot time a sub-millisecond wait: epoll rounds its timeout up to whole
    milliseconds, and a wake-up on a busy box adds more, while at 115,200 baud a whole
    transaction is about 3.4 ms. A cooperative spin (`sleep(0)` in a loop) is worse on a
    loaded machine: the spinning process uses up its time slice and the scheduler preempts it
    in the middle of the gap (measured: 0.5 ms late on average, 6 ms at p99, with load 6 on
    2 cores). So only the part of the wait beyond `_BLOCK_S` goes to the loop; the rest is a
    blocking `time.sleep` (a kernel timer, which a sleeping process is woken for promptly)
    that ends `_SPIN_S` early, and a short busy-wait to the deadline. The loop is held for at
    most `_BLOCK_S` per transaction, and only while the line must be silent anyway.
    """

    def __init__(self, gap_s: float, clock: Clock | None = None) -> None:
        self.gap_s = gap_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last_end = -math.inf
        self.transactions = 0

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            deadline = self._last_end + self.gap_s
            wait = deadline - time.perf_counter()
            if wait > _BLOCK_S:
                await asyncio.sleep(wait - _BLOCK_S)
                wait = deadline - time.perf_counter()
            if wait > _SPIN_S:
                time.sleep(wait - _SPIN_S)  # noqa: ASYNC251 - sub-ms precision, see the class doc
            while time.perf_counter() < deadline:
                pass
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._last_end = time.perf_counter()
        self.transactions += 1
        self._lock.release()


class ModbusCoordinator(PollingCoordinator):
    """Polls one device; also its CommandHandler (typed, range-checked, rate-limited writes)."""

    def __init__(
        self,
        device: DeviceConfig,
        profile: Profile,
        backend: ModbusBackend,
        bus: Bus,
        clock: Clock,
        health: DeviceHealth,
        *,
        line_lock: BusLock | None = None,
        rng: random.Random | None = None,
        plan_path: str | None = None,
    ) -> None:
        assert profile.modbus is not None
        super().__init__(device.id, device.poll_interval_s, clock, health, rng=rng)
        self.device = device
        self.profile = profile
        self.section = profile.modbus
        self.backend = backend
        self.bus = bus
        self.blocks: list[ReadBlock] = plan_reads(self.section)
        self.unreadable: set[str] = set()  # points the device refuses even read alone
        self.plan_path = plan_path
        self._line_lock = line_lock
        self._load_plan()
        self._units = {p.name: p.unit for p in self.section.points}
        self._points = {p.name: p for p in self.section.points}
        self._commands = {c.name: c for c in self.section.commands}
        self._last_write = -math.inf

    def _line(self) -> AbstractAsyncContextManager[None]:
        return self._line_lock if self._line_lock is not None else nullcontext()

    def _load_plan(self) -> None:
        if self.plan_path is None:
            return
        try:
            plan = spans.load_plan(self.plan_path, self.section.points)
        except (OSError, CodecError) as exc:
            log.warning("%s: learnt read plan not usable, relearning: %s", self.device.id, exc)
            return
        if plan is not None:
            self.blocks = list(plan.blocks)
            self.unreadable = set(plan.unreadable)

    async def _save_plan(self) -> None:
        if self.plan_path is None:
            return
        plan = spans.LearntPlan(tuple(self.blocks), tuple(sorted(self.unreadable)))
        try:
            await asyncio.to_thread(spans.save_plan, self.plan_path, plan, self.section.points)
        except OSError as exc:
            log.warning("%s: could not store the learnt read plan: %s", self.device.id, exc)

    async def poll_once(self) -> list[Reading]:
        """Read every block once and return what was read.

        Raises DeviceIOError/DeviceRejected only when no block was read. A block refused with
        exception 02 is split and the split is kept; when a later block fails, the readings
        of the blocks before it are still returned and the failure is counted."""
        now = self.clock.time()
        out: list[Reading] = []
        dev = self.device.id
        answered = 0
        failure: DeviceIOError | DeviceRejected | None = None
        plan: list[ReadBlock] = []
        learnt = False
        for i, block in enumerate(self.blocks):
            try:
                result = await spans.read_splitting(self._read, block)
            except DeviceIOError as exc:
                # The device (or the line) is not answering: spend no more timeouts on it.
                failure = exc
                plan.extend(self.blocks[i:])
                break
            except DeviceRejected as exc:
                failure = exc
                plan.append(block)
                continue
            if result.split:
                learnt = True
                self._note_refused(block, result)
            plan.extend(b for b, _ in result.answered)
            self.unreadable.update(p.name for p in result.refused)
            for sub, values in result.answered:
                answered += 1
                try:
                    decoded = decode_block(
                        sub, values, self.section.byte_order, self.section.word_order
                    )
                except CodecError as exc:
                    self.health.bad_data(self.clock.time(), exc)
                    continue
                for point, value in decoded:
                    out.append(Reading(dev, point.name, value, now, point.unit))
        self.health.stale_replies = getattr(self.backend, "stale_replies", 0)
        if learnt:
            self.blocks = plan
            await self._save_plan()
        if failure is not None:
            if not answered:
                raise failure
            self.health.glitch(self.clock.time(), failure)
        elif not answered and self.unreadable:
            raise DeviceRejected("the device refuses every point of its profile")
        return out

    def _note_refused(self, block: ReadBlock, result: spans.Learnt) -> None:
        pieces = ", ".join(f"{b.start}+{b.count}" for b, _ in result.answered) or "none"
        log.info(
            "%s: %s %d+%d refused as one read (exception 02); reading it as %s from now on",
            self.device.id,
            block.table,
            block.start,
            block.count,
            pieces,
        )
        if result.refused:
            log.warning(
                "%s: the device refuses %s even read alone; not polled any more",
                self.device.id,
                ", ".join(p.name for p in result.refused),
            )

    async def _read(self, block: ReadBlock) -> list[int]:
        async with self._line():
            return await self.backend.read(
                block.table, block.start, block.count, self.device.unit_id
            )

    async def _ensure_connected(self) -> None:
        if self.backend.connected:
            return
        # On a shared line several coordinators may find the port closed at once: open it once.
        async with self._line():
            if not self.backend.connected:
                await self.backend.connect()

    async def connect(self) -> None:
        await self._ensure_connected()

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            # Stopped (or crashed): a TCP connection is this device's own and closes with it; a
            # shared RS-485 port belongs to the line and stays.
            if self._line_lock is None:
                self.backend.close()

    async def poll(self) -> None:
        readings = await self.poll_once()
        if readings:
            await self.bus.publish_many(readings)

    def after_failure(self, exc: DeviceIOError | DeviceRejected) -> None:
        # A silent slave on RS-485 says nothing about the port or the other slaves: keep the
        # shared port open; only this device backs off. A TCP connection is this device's own,
        # and a fresh one is the cure for a half-open socket.
        if isinstance(exc, DeviceIOError) and self._line_lock is None:
            self.backend.close()

    # -- commands -----------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        try:
            spec, point, value = self._validate(command)
            encoded = encode_point(point, value, self.section.byte_order, self.section.word_order)
        except CommandRejected as exc:
            return CommandResult(False, error=str(exc))
        now = self.clock.monotonic()
        wait = self._last_write + self.section.min_write_interval_s - now
        if wait > 0:
            # Parameters live in EEPROM with a limited number of write cycles.
            return CommandResult(
                False,
                error=f"rate limited: one write per {self.section.min_write_interval_s:g} s,"
                f" next allowed in {wait:.1f} s",
            )
        unit = self.device.unit_id
        self._last_write = now
        lost: DeviceIOError | None = None
        try:
            await self._ensure_connected()
            async with self._line():
                if isinstance(encoded, bool):
                    await self.backend.write_coil(point.address, encoded, unit)
                else:
                    await self.backend.write_registers(point.address, encoded, unit)
        except DeviceRejected as exc:
            return CommandResult(False, error=f"device refused the write: {exc}")
        except DeviceIOError as exc:
            # The request may have been applied and only its reply lost or corrupted: the
            # register itself says which. Never write again blind (EEPROM, and not idempotent
            # for every device).
            lost = exc
        if not spec.readback and lost is None:
            return CommandResult(True, value=value)
        try:
            await self._ensure_connected()
            block = ReadBlock(point.table, point.address, point.width, (point,))
            raw = await self._read(block)
            ((_, got),) = decode_block(block, raw, self.section.byte_order, self.section.word_order)
        except (DeviceIOError, DeviceRejected) as exc:
            if lost is not None:
                return CommandResult(False, error=f"no answer: {lost}; read-back failed: {exc}")
            return CommandResult(False, error=f"no answer to the read-back: {exc}")
        except CodecError as exc:
            return CommandResult(False, error=f"read-back not understood: {exc}")
        wanted = [encoded] if isinstance(encoded, bool) else encoded
        actual = [bool(raw[0])] if isinstance(encoded, bool) else [int(w) for w in raw]
        if actual != wanted:
            if lost is not None:
                return CommandResult(
                    False, value=got, error=f"no answer: {lost}; not applied (reads {got})"
                )
            return CommandResult(False, value=got, error=f"read back {got}, expected {value}")
        if lost is not None:
            log.info(
                "%s: %s: the write's reply was lost (%s); read-back shows it applied",
                self.device.id,
                command.name,
                lost,
            )
        await self.bus.publish(
            Reading(self.device.id, point.name, got, self.clock.time(), point.unit)
        )
        return CommandResult(True, value=got)

    def _validate(self, command: Command) -> tuple[ModbusCommand, ModbusPoint, float | bool]:
        spec = self._commands.get(command.name)
        if spec is None:
            known = ", ".join(sorted(self._commands)) or "none"
            raise CommandRejected(
                f"{self.profile.id} has no command {command.name!r} (commands: {known})"
            )
        point = self._points[spec.point]
        args = dict(command.args)
        if set(args) - {"value"} or "value" not in args:
            raise CommandRejected(f"{command.name} takes one argument 'value', got {sorted(args)}")
        value = args["value"]
        if point.table in BIT_TABLES:
            if not isinstance(value, bool) and value not in (0, 1):
                raise CommandRejected(f"{command.name}: value must be true or false")
            return spec, point, bool(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CommandRejected(f"{command.name}: value must be a number, got {value!r}")
        if not math.isfinite(value):
            raise CommandRejected(f"{command.name}: value must be finite")
        if spec.min is not None and value < spec.min:
            raise CommandRejected(f"{command.name}: {value} is below the minimum {spec.min:g}")
        if spec.max is not None and value > spec.max:
            raise CommandRejected(f"{command.name}: {value} is above the maximum {spec.max:g}")
        return spec, point, float(value)
