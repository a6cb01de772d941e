"""The in-process bus: producers publish typed messages, each subscriber has its own bounded queue.

Overflow is a per-subscriber policy, never an accident: the store blocks producers (nothing
accepted may be dropped), a live view drops its oldest messages. Every drop and every stall is
counted, and logged once per episode rather than once per message.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_agent.channel import Channel
from edge_agent.errors import BusClosed
from edge_agent.messages import Command, Event, Message, Reading

log = logging.getLogger(__name__)


class Overflow(enum.Enum):
    BLOCK = "block"  # producers wait for room: back-pressure, no loss
    DROP_OLDEST = "drop_oldest"  # keep the freshest view
    DROP_NEWEST = "drop_newest"  # keep what is queued, refuse the new


@dataclass
class Subscription:
    name: str
    kinds: frozenset[type]
    overflow: Overflow
    channel: Channel[Any]
    dropped: int = 0
    stalls: int = 0
    _overflowing: bool = field(default=False, repr=False)

    def _note_overflow(self) -> None:
        if not self._overflowing:
            self._overflowing = True
            log.warning(
                "bus: subscriber %s is full (%d queued); policy %s",
                self.name,
                len(self.channel),
                self.overflow.value,
            )

    def _note_room(self) -> None:
        if self._overflowing and len(self.channel) < self.channel.capacity // 2:
            self._overflowing = False
            log.info(
                "bus: subscriber %s has room again (%d dropped, %d stalls so far)",
                self.name,
                self.dropped,
                self.stalls,
            )


class Bus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._by_kind: dict[type, list[Subscription]] = {Reading: [], Event: [], Command: []}
        self._closed = False
        self.published = 0

    def subscribe(
        self,
        name: str,
        kinds: Sequence[type],
        capacity: int,
        overflow: Overflow,
        channel: Channel[Any] | None = None,
    ) -> Subscription:
        """Register a consumer; it may bring its own channel (the store queues control items)."""
        chan = channel if channel is not None else Channel(capacity)
        sub = Subscription(name, frozenset(kinds), overflow, chan)
        self._subs.append(sub)
        for kind in kinds:
            self._by_kind[kind].append(sub)
        return sub

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subs)

    def close(self) -> None:
        self._closed = True

    async def publish(self, msg: Message) -> None:
        if self._closed:
            raise BusClosed(f"bus closed; cannot publish {type(msg).__name__}")
        self.published += 1
        for sub in self._by_kind[type(msg)]:
            if sub.channel.put_nowait(msg):
                if sub._overflowing:
                    sub._note_room()
                continue
            await self._overflow(sub, [msg])

    async def publish_many(self, msgs: Sequence[Message]) -> None:
        """Publish a batch of one kind of message (a device poll's readings) in order."""
        if not msgs:
            return
        if self._closed:
            raise BusClosed("bus closed; cannot publish")
        self.published += len(msgs)
        kind = type(msgs[0])
        batch = list(msgs)
        for sub in self._by_kind[kind]:
            taken = sub.channel.extend_nowait(batch)
            if taken < len(batch):
                await self._overflow(sub, batch[taken:])
            elif sub._overflowing:
                sub._note_room()

    async def _overflow(self, sub: Subscription, rest: list[Message]) -> None:
        sub._note_overflow()
        if sub.overflow is Overflow.BLOCK:
            sub.stalls += 1
            await sub.channel.put_many(rest)
        elif sub.overflow is Overflow.DROP_OLDEST:
            for msg in rest:
                if not sub.channel.put_nowait(msg):
                    sub.channel.drop_oldest()
                    sub.dropped += 1
                    sub.channel.force(msg)
        else:
            sub.dropped += len(rest)
