"""The devices on one broker: topic routing, per-device decoding, health and reply waiters."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

from drivers.errors import CodecError, DeviceIOError
from drivers.mqtt.codec import DeviceCodec, render_topic
from drivers.mqtt.command_codec import ReplyOutcome
from drivers.mqtt.link import BrokerLink, Inbound
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import BrokerConfig, DeviceConfig
from edge_agent.health import DeviceHealth
from edge_agent.messages import Quality, Reading, Value
from firmware_profiles.sections.mqtt import MqttSection

log = logging.getLogger(__name__)


def _reading_builder() -> Callable[[str, str, Value, float, str], Reading]:
    """Reading(device_id, point, value, ts, unit), built by setting its slots directly.

    The hot path makes five per message; a frozen dataclass's generated __init__ goes through
    object.__setattr__ per field and costs about three times as much. Only valid while Reading
    is a slotted dataclass with exactly these fields and no __post_init__, so that is checked
    and the plain constructor used otherwise.
    """
    names = tuple(f.name for f in fields(Reading))
    if names != ("device_id", "point", "value", "ts", "unit", "quality") or hasattr(
        Reading, "__post_init__"
    ):
        return Reading  # pragma: no cover - guards a future change of messages.py
    new = object.__new__
    set_dev, set_point, set_value, set_ts, set_unit, set_quality = (
        getattr(Reading, n).__set__ for n in names
    )
    good = Quality.GOOD

    def build(device_id: str, point: str, value: Value, ts: float, unit: str) -> Reading:
        r: Reading = new(Reading)
        set_dev(r, device_id)
        set_point(r, point)
        set_value(r, value)
        set_ts(r, ts)
        set_unit(r, unit)
        set_quality(r, good)
        return r

    return build


make_reading = _reading_builder()


class MqttDevice:
    def __init__(self, device: DeviceConfig, section: MqttSection, health: DeviceHealth) -> None:
        assert device.address is not None  # the config loader guarantees it
        self.device = device
        self.section = section
        self.health = health
        self.codec = DeviceCodec(section, device.address)
        self._last_ts = -math.inf
        self.online: bool | None = None

    def handle(self, topic: str, payload: bytes, now: float) -> list[Reading]:
        try:
            d = self.codec.decode(topic, payload, now)
        except CodecError as exc:
            self.health.bad_data(now, exc)
            return []
        if d.problems:
            self.health.bad_data(now, CodecError("; ".join(d.problems)))
        if d.online is False:
            self.online = False
            self.health.failed(now, DeviceIOError("reported offline (last will)"))
        else:
            if d.online:
                self.online = True
            self.health.ok(now)
        if d.ts is not None:
            ts = d.ts
        else:
            # Two messages handled in one batch must not share a timestamp (that merges them).
            ts = self._last_ts = max(now, self._last_ts + 1e-6)
        dev = self.device.id
        return [make_reading(dev, p.name, v, ts, p.unit) for p, v in d.values]


@dataclass(eq=False)
class Waiter:
    topic: str
    judge: Callable[[bytes], ReplyOutcome]
    future: asyncio.Future[ReplyOutcome]


class BrokerService:
    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        devices: list[MqttDevice],
        bus: Bus,
        clock: Clock,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.bus = bus
        self.clock = clock
        self.devices = devices
        self.link = BrokerLink(
            broker,
            client_id,
            clock,
            on_batch=self.handle_batch,
            on_down=self._on_down,
            on_up=self._on_up,
            rng_seed=client_id,
        )
        self._routes: dict[str, list[MqttDevice]] = {}
        for d in devices:
            for topic in d.codec.topics:
                self._routes.setdefault(topic, []).append(d)
                self.link.subscriptions[topic] = d.section.qos
            for c in d.section.commands:
                if c.reply_topic is not None:
                    reply = render_topic(c.reply_topic, d.codec.address, client_id)
                    self.link.subscriptions[reply] = max(d.section.qos, 1)
        self._waiters: dict[str, list[Waiter]] = {}
        self._rpc_ids = itertools.count(1)
        self._outage = False

    def next_rpc_id(self) -> int:
        return next(self._rpc_ids)

    async def run(self) -> None:
        await self.link.run()

    async def handle_batch(self, batch: list[Inbound]) -> None:
        now = self.clock.time()
        out: list[Reading] = []
        routes = self._routes
        for topic, payload in batch:
            for dev in routes.get(topic, ()):
                out += dev.handle(topic, payload, now)
            if self._waiters:
                self._answer(topic, payload)
        if out:
            await self.bus.publish_many(out)

    def expect(self, topic: str, judge: Callable[[bytes], ReplyOutcome]) -> Waiter:
        w = Waiter(topic, judge, asyncio.get_running_loop().create_future())
        self._waiters.setdefault(topic, []).append(w)
        return w

    def forget(self, w: Waiter) -> None:
        ws = self._waiters.get(w.topic, [])
        if w in ws:
            ws.remove(w)
        if not ws:
            self._waiters.pop(w.topic, None)

    def _answer(self, topic: str, payload: bytes) -> None:
        for w in list(self._waiters.get(topic, ())):
            if w.future.done():
                continue
            outcome = w.judge(payload)
            if outcome.done:
                w.future.set_result(outcome)

    def _on_up(self) -> None:
        if self._outage:
            log.info(
                "mqtt %s: reconnected, %d subscriptions renewed",
                self.broker.id,
                len(self.link.subscriptions),
            )
        self._outage = False

    def _on_down(self, exc: BaseException) -> None:
        if not self._outage:
            log.warning("mqtt %s: %s", self.broker.id, exc)
            self._outage = True
        now = self.clock.time()
        for d in self.devices:
            d.health.failed(now, exc)
