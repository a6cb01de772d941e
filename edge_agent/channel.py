"""A bounded FIFO between coroutines of one event loop, drained in batches, fair to producers.

asyncio.Queue costs a future round-trip per item; the store writer wants whatever is waiting,
all at once, so this keeps a deque and wakes the consumer once per batch. Producers blocked on
a full channel are served first come, first served: a fast producer cannot starve a slow one
(a newcomer queues behind those already waiting instead of grabbing freed room).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Channel(Generic[T]):
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._not_empty = asyncio.Event()
        self._putters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        # A channel is a thing, not a container to test for emptiness.
        return True

    def full(self) -> bool:
        return len(self._items) >= self.capacity

    def _append(self, items: list[T]) -> int:
        room = self.capacity - len(self._items)
        taken = items if len(items) <= room else items[:room]
        if taken:
            self._items.extend(taken)
            self._not_empty.set()
        return len(taken)

    def _wake_putter(self) -> None:
        while self._putters and len(self._items) < self.capacity:
            fut = self._putters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def put_nowait(self, item: T) -> bool:
        """Append if there is room and nobody is waiting; False otherwise."""
        if self._putters:
            return False
        return self._append([item]) == 1

    def extend_nowait(self, items: list[T]) -> int:
        """Append as many as fit (none while others wait); returns how many were taken."""
        if self._putters:
            return 0
        return self._append(items)

    def force(self, item: T) -> None:
        """Append past capacity: for the few control items whose senders wait on them."""
        self._items.append(item)
        self._not_empty.set()

    async def put(self, item: T) -> None:
        await self.put_many([item])

    async def put_many(self, items: Iterable[T]) -> None:
        pending = list(items)
        if not self._putters:
            pending = pending[self._append(pending) :]
        while pending:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                with contextlib.suppress(ValueError):
                    self._putters.remove(fut)
                if fut.done() and not fut.cancelled():
                    self._wake_putter()  # pass the turn on
                raise
            pending = pending[self._append(pending) :]
        self._wake_putter()

    def drop_oldest(self) -> T | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self._wake_putter()
        return item

    async def get_batch(self, max_items: int) -> list[T]:
        """Wait for at least one item, then return up to max_items in FIFO order."""
        while not self._items:
            self._not_empty.clear()
            await self._not_empty.wait()
        items = self._items
        if len(items) <= max_items:
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft() for _ in range(max_items)]
        if not items:
            self._not_empty.clear()
        self._wake_putter()
        return batch
