"""The one owner of every long-lived task.

Services start in stages, consumers before producers (store before drivers), and stop in the
reverse order, so nothing a driver read is left in a queue when the store closes. A crashed
service is logged with its traceback; a restartable one (a driver) comes back after a backoff,
a vital one (the store) stops the agent cleanly. This is the only place that catches Exception.

Nothing stops silently: a service that reports progress (`Liveness`) and has work waiting
(its peer delivered something it has not handled) but made no progress for `stall_after_s` is
wedged; the watchdog cancels it and it restarts like a crashed one. Every crash, stall and
restart is an event, and `states` says which services are not running right now (the agent's
/health, /metrics and `status` show it as degraded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.backoff import Backoff
from edge_agent.clock import Clock, SystemClock
from edge_agent.messages import Event, Severity

log = logging.getLogger(__name__)

HEALTHY_RUN_S = 300.0  # a service that ran this long before it crashed restarts quickly again


@dataclass(frozen=True)
class Liveness:
    """How a service shows it is working: `progress` grows while it works; `busy` is true while
    work it was given waits (messages received and not handled, records queued and not
    committed). Busy with no progress for `stall_after_s` is wedged."""

    progress: Callable[[], int]
    busy: Callable[[], bool]
    stall_after_s: float = 60.0


@dataclass
class Service:
    name: str
    run: Callable[[], Awaitable[None]]
    # Graceful stop: asked first, then the task is awaited; without one the task is cancelled.
    stop: Callable[[], Awaitable[None]] | None = None
    restart: bool = False
    liveness: Liveness | None = None


@dataclass
class ServiceState:
    """What /health says about one service."""

    state: str = "running"  # running | restarting (after a crash or a stall) | failed | stopped
    restarts: int = 0
    crashes: int = 0
    stalls: int = 0
    last_error: str | None = None
    since: float = 0.0
    # the watchdog's view: progress seen last and when it last changed
    _seen: int = field(default=-1, repr=False)
    _changed: float = field(default=0.0, repr=False)

    def report(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "crashes": self.crashes,
            "stalls": self.stalls,
            "last_error": self.last_error,
            "since": self.since,
        }


class _Wedged(Exception):
    pass


def _describe(exc: BaseException) -> str:
    """The error itself, not the task group that carried it up."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class Supervisor:
    def __init__(
        self,
        clock: Clock | None = None,
        stop_timeout_s: float = 1.5,
        *,
        on_event: Callable[[Event], Awaitable[None]] | None = None,
        watch_every_s: float = 5.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.stop_timeout_s = stop_timeout_s
        self.watch_every_s = watch_every_s
        self._on_event = on_event
        self._stop = asyncio.Event()
        self.failed: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[str, ServiceState] = {}
        self._services: dict[str, Service] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}  # the current run() of each service
        self._wedged: set[str] = set()

    @property
    def degraded(self) -> list[str]:
        """Services not running as they should (crashed, wedged, restarting or failed)."""
        return sorted(n for n, st in self.states.items() if st.state not in ("running", "stopped"))

    async def _emit(self, kind: str, severity: Severity, message: str, **data: Any) -> None:
        if self._on_event is None:
            return
        try:
            await self._on_event(
                Event(kind, self.clock.time(), "supervisor", severity, message, data)
            )
        except Exception as exc:  # closing down: the bus is gone; the log still has it
            log.debug("event %s not recorded: %s", kind, exc)

    def _set(self, name: str, state: str, error: str | None = None) -> ServiceState:
        st = self.states.setdefault(name, ServiceState())
        st.state = state
        st.since = self.clock.time()
        if error is not None:
            st.last_error = error
        return st

    def request_stop(self, reason: str = "requested") -> None:
        if not self._stop.is_set():
            log.info("shutting down (%s)", reason)
            self._stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)

    async def _guard(self, svc: Service) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        self._services[svc.name] = svc
        self._set(svc.name, "running")
        while True:
            started = self.clock.monotonic()
            try:
                await self._run_once(svc)
                self._set(svc.name, "stopped")
                return
            except _Wedged:
                log.error("service %s is wedged: no progress while busy", svc.name)
                if not svc.restart:
                    self._set(svc.name, "failed", "no progress while busy").stalls += 1
                    self.failed.append(svc.name)
                    self.request_stop(f"vital service {svc.name} is wedged")
                    return
                st = self._set(svc.name, "restarting", "no progress while busy")
                st.stalls += 1
                await self._emit(
                    "service.stalled",
                    Severity.WARNING,
                    f"service {svc.name} stopped making progress; restarting it",
                    service=svc.name,
                )
            except Exception as exc:
                log.exception("service %s crashed", svc.name)
                error = _describe(exc)
                if not svc.restart:
                    self._set(svc.name, "failed", error).crashes += 1
                    self.failed.append(svc.name)
                    self.request_stop(f"vital service {svc.name} failed")
                    return
                self._set(svc.name, "restarting", error).crashes += 1
                await self._emit(
                    "service.crashed",
                    Severity.WARNING,
                    f"service {svc.name} crashed ({error[:200]}); restarting it",
                    service=svc.name,
                    error=error[:500],
                )
            if self.clock.monotonic() - started > HEALTHY_RUN_S:
                backoff.reset()  # a crash after a long healthy run is not a crash loop
            await self.clock.sleep(backoff.next())
            log.info("restarting service %s", svc.name)
            st = self._set(svc.name, "running")
            st.restarts += 1
            st._seen = -1
            await self._emit(
                "service.restarted",
                Severity.INFO,
                f"service {svc.name} restarted",
                service=svc.name,
                restarts=st.restarts,
            )

    async def _run_once(self, svc: Service) -> None:
        """svc.run() in a task of its own, so the watchdog can cancel a wedged run alone."""
        if svc.liveness is None:
            await svc.run()
            return

        async def run() -> None:
            await svc.run()

        task = asyncio.create_task(run(), name=f"{svc.name}:run")
        self._runs[svc.name] = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if svc.name in self._wedged and (current is None or not current.cancelling()):
                raise _Wedged() from None
            raise
        finally:
            self._wedged.discard(svc.name)
            self._runs.pop(svc.name, None)

    async def _watchdog(self) -> None:
        """Cancel a service that is busy and has made no progress for its stall_after_s."""
        while True:
            await self.clock.sleep(self.watch_every_s)
            now = self.clock.monotonic()
            for name, task in list(self._runs.items()):
                svc = self._services[name]
                live = svc.liveness
                st = self.states[name]
                if live is None or task.done() or name in self._wedged:
                    continue
                progress = live.progress()
                if progress != st._seen or not live.busy():
                    st._seen, st._changed = progress, now
                elif now - st._changed >= live.stall_after_s:
                    self._wedged.add(name)
                    task.cancel()

    async def run(self, stages: list[list[Service]]) -> None:
        async with asyncio.TaskGroup() as tg:
            watchdog = None
            if any(s.liveness is not None for stage in stages for s in stage):
                watchdog = tg.create_task(self._watchdog(), name="supervisor:watchdog")
            started: list[list[tuple[Service, asyncio.Task[None]]]] = []
            for stage in stages:
                started.append([(s, tg.create_task(self._guard(s), name=s.name)) for s in stage])
                for s, t in started[-1]:
                    self.tasks[s.name] = t
                await asyncio.sleep(0)  # let the stage reach its first await before the next
            await self._stop.wait()
            if watchdog is not None:
                watchdog.cancel()
            for stage_tasks in reversed(started):
                await asyncio.gather(*(self._stop_one(s, t) for s, t in stage_tasks))

    async def _stop_one(self, svc: Service, task: asyncio.Task[None]) -> None:
        if task.done():
            return
        if svc.stop is not None:
            try:
                await asyncio.wait_for(svc.stop(), self.stop_timeout_s)
            except TimeoutError:
                log.warning("service %s did not stop in %.1f s", svc.name, self.stop_timeout_s)
        # Python 3.11's asyncio.wait_for (used inside client libraries) can swallow a cancel
        # that lands while its inner future completes; keep cancelling until the task ends.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
        with contextlib.suppress(asyncio.CancelledError):
            await task
