"""A bounded FIFO between coroutines of one event loop, drained in batches.

asyncio.Queue costs a future round-trip per item; the store writer wants whatever is waiting,
all at once, so this keeps a deque and wakes the consumer once per batch.
"""

from __future__ import annotations

import asyncio
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
        self._not_full = asyncio.Event()
        self._not_full.set()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.capacity

    def free(self) -> int:
        return self.capacity - len(self._items)

    def put_nowait(self, item: T) -> bool:
        """Append if there is room; False when full (the caller applies its overflow policy)."""
        if len(self._items) >= self.capacity:
            return False
        self._items.append(item)
        self._not_empty.set()
        if len(self._items) >= self.capacity:
            self._not_full.clear()
        return True

    def extend_nowait(self, items: list[T]) -> int:
        """Append as many as fit; returns how many were taken."""
        room = self.capacity - len(self._items)
        taken = items if len(items) <= room else items[:room]
        if taken:
            self._items.extend(taken)
            self._not_empty.set()
            if len(self._items) >= self.capacity:
                self._not_full.clear()
        return len(taken)

    async def put(self, item: T) -> None:
        while not self.put_nowait(item):
            await self._not_full.wait()

    async def put_many(self, items: Iterable[T]) -> None:
        pending = list(items)
        while pending:
            n = self.extend_nowait(pending)
            pending = pending[n:]
            if pending:
                await self._not_full.wait()

    def drop_oldest(self) -> T | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self._not_full.set()
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
        self._not_full.set()
        return batch
