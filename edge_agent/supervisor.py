"""The one owner of every long-lived task.

Services start in stages, consumers before producers (store before drivers), and stop in the
reverse order, so nothing a driver read is left in a queue when the store closes. A crashed
service is logged with its traceback; a restartable one (a driver) comes back after a backoff,
a vital one (the store) stops the agent cleanly. This is the only place that catches Exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.backoff import Backoff
from edge_agent.clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass
class Service:
    name: str
    run: Callable[[], Awaitable[None]]
    # Graceful stop: asked first, then the task is awaited; without one the task is cancelled.
    stop: Callable[[], Awaitable[None]] | None = None
    restart: bool = False


class Supervisor:
    def __init__(self, clock: Clock | None = None, stop_timeout_s: float = 1.5) -> None:
        self.clock = clock or SystemClock()
        self.stop_timeout_s = stop_timeout_s
        self._stop = asyncio.Event()
        self.failed: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}

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
        while True:
            try:
                await svc.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service %s crashed", svc.name)
                if not svc.restart:
                    self.failed.append(svc.name)
                    self.request_stop(f"vital service {svc.name} failed")
                    return
            await self.clock.sleep(backoff.next())
            log.info("restarting service %s", svc.name)

    async def run(self, stages: list[list[Service]]) -> None:
        async with asyncio.TaskGroup() as tg:
            started: list[list[tuple[Service, asyncio.Task[None]]]] = []
            for stage in stages:
                started.append([(s, tg.create_task(self._guard(s), name=s.name)) for s in stage])
                for s, t in started[-1]:
                    self.tasks[s.name] = t
                await asyncio.sleep(0)  # let the stage reach its first await before the next
            await self._stop.wait()
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
