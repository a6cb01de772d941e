"""The devices on one broker: topic routing, per-device decoding, health and reply waiters.

Each batch of messages becomes readings on the bus and, for the store, a receipt per QoS 1
message (its message id, a digest, and the device/time its readings were stamped with) that
commits in the same transaction as the first of those readings. The batch's messages are
acknowledged once a barrier queued behind its readings has committed. A message the broker
sends again (the DUP flag: its acknowledgement did not reach the broker before a crash or a
lost connection) is looked up: when its receipt is there, only the points not yet stored are
stored, at the time first given, so a redelivery never stores a reading twice.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import logging
import math
import re
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from drivers.base import CommitLog
from drivers.errors import CodecError, DeviceIOError
from drivers.mqtt.codec import DeviceCodec, render_topic
from drivers.mqtt.command_codec import ReplyOutcome
from drivers.mqtt.link import BrokerLink, Inbound
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import AutoDevices, BrokerConfig, DeviceConfig
from edge_agent.health import DeviceHealth, HealthRegistry
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
DEVICE_TIME = "device_time"  # the device's own time, kept when its clock is not trusted

_CREATE_RECEIPTS = (
    "CREATE TABLE IF NOT EXISTS mqtt_receipts (client TEXT NOT NULL, mid INTEGER NOT NULL, "
    "digest INTEGER NOT NULL, stamps TEXT NOT NULL, PRIMARY KEY (client, mid)) WITHOUT ROWID"
)
_PUT_RECEIPT = "INSERT OR REPLACE INTO mqtt_receipts VALUES (?, ?, ?, ?)"


def digest(topic: str, payload: bytes) -> int:
    """Stable across processes (unlike hash()): tells a redelivery from a reused message id."""
    return zlib.crc32(payload, zlib.crc32(topic.encode()))


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the store already holds of one message: per device, its time and stored points."""

    stamps: dict[str, tuple[float, frozenset[str]]]


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
        if d.skewed is not None:
            self.health.skewed(now, d.skewed)
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
        out = [make_reading(dev, p.name, v, ts, p.unit) for p, v in d.values]
        if d.skewed is not None and out:
            out.append(make_reading(dev, DEVICE_TIME, d.skewed, ts, "s"))
        return out


def mqtt_matches(sub: str, topic: str) -> bool:
    """Whether a subscription filter (with + and #) matches a concrete topic."""
    s, t = sub.split("/"), topic.split("/")
    for i, level in enumerate(s):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(s) == len(t)


def _refusal(payload: bytes, limit: int) -> str:
    if len(payload) > limit:
        return f"payload of {len(payload)} bytes is over the broker's limit of {limit}"
    return "message crashed the decoder before (quarantined)"


def _stamps(out: list[Reading], start: int) -> str:
    """'device ts' per device among out[start:], one a line (ts exact through repr)."""
    seen: dict[str, float] = {}
    for r in out[start:]:
        seen.setdefault(r.device_id, r.ts)
    return "\n".join(f"{dev} {ts!r}" for dev, ts in seen.items())


class AutoGroup:
    """One `auto_devices` entry: wildcard filters over the profile's topics and the devices
    made from them so far."""

    def __init__(self, spec: AutoDevices, section: MqttSection) -> None:
        self.spec = spec
        self.section = section
        self.created: list[str] = []
        self.refused = 0  # messages from devices over the cap or not allowed
        self._refused_logged = False
        patterns = [t.topic for t in section.topics]
        if section.availability is not None:
            patterns.append(section.availability.topic)
        # `{device}` fills a whole level (the profile loader checks it): a `+` to subscribe,
        # a group to take the level from a topic.
        self.filters = sorted({render_topic(p, "+") for p in patterns})
        self._matchers = [
            re.compile(
                "/".join("([^/]+)" if lv == "{device}" else re.escape(lv) for lv in p.split("/"))
                + "$"
            )
            for p in patterns
        ]

    def level(self, topic: str) -> str | None:
        for m in self._matchers:
            found = m.match(topic)
            if found:
                return found.group(1)
        return None

    def allows(self, level: str) -> bool:
        return not self.spec.allow or any(fnmatch.fnmatchcase(level, a) for a in self.spec.allow)

    def refuse(self, broker: str, level: str, why: str) -> None:
        self.refused += 1
        if not self._refused_logged:
            self._refused_logged = True
            log.warning(
                "mqtt %s: %s not added as a device (%s; counted, further ones not logged)",
                broker,
                level,
                why,
            )


_NOT_SLUG = re.compile(r"[^a-z0-9._-]+")


def device_id_for(prefix: str, level: str) -> str:
    """A device id (a slug) from a topic level: 'Walk-in Fridge' → 'walk-in-fridge'."""
    slug = _NOT_SLUG.sub("-", level.lower()).strip("-._")
    return f"{prefix}{slug}" if slug else ""


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
        store: CommitLog | None = None,
        *,
        auto: list[AutoGroup] | None = None,
        health: HealthRegistry | None = None,
        added: dict[str, DeviceConfig] | None = None,
        on_added: Callable[[MqttDevice], None] | None = None,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.bus = bus
        self.clock = clock
        # Without a store (the transport's own tests) a message is acknowledged once its
        # readings are on the bus; the agent always passes one.
        self.store = store
        self.devices = devices
        self.max_payload = broker.max_payload_kib * 1024
        self.redelivered = 0  # messages the broker sent again
        self.deduplicated = 0  # readings of those already in the store, not stored again
        self._poison: set[tuple[str, int]] = set()  # messages that crashed a decoder
        self._decoding: tuple[str, bytes] | None = None
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
                # QoS 2 is received as QoS 1: paho answers PUBREC before the application
                # sees the message, which would acknowledge it before the commit. QoS 1 plus
                # the receipts below stores it exactly once all the same.
                self.link.subscriptions[topic] = min(d.section.qos, 1)
            for c in d.section.commands:
                if c.reply_topic is not None:
                    reply = render_topic(c.reply_topic, d.codec.address, client_id)
                    self.link.subscriptions[reply] = 1
        self._waiters: dict[str, list[Waiter]] = {}
        self._rpc_ids = itertools.count(1)
        self._outage = False
        self.auto = auto or []
        self._health = health
        self._added = added if added is not None else {}
        self._ids = {d.device.id for d in devices}
        self.on_added = on_added
        for group in self.auto:
            for c in group.section.commands:
                if c.reply_topic is not None:  # replies of every device the group may add
                    self.link.subscriptions[render_topic(c.reply_topic, "+", client_id)] = 1
            for f in group.filters:
                # One wildcard subscription covers the configured devices it matches too (a
                # second, exact one would make the broker deliver their messages twice).
                for topic in [t for t in self.link.subscriptions if mqtt_matches(f, t)]:
                    del self.link.subscriptions[topic]
                self.link.subscriptions[f] = min(group.section.qos, 1)

    def next_rpc_id(self) -> int:
        return next(self._rpc_ids)

    async def run(self) -> None:
        if self.store is not None:
            await self.store.run_job(lambda conn: conn.execute(_CREATE_RECEIPTS))
        try:
            await self.link.run()
        except BaseException as exc:
            # Crashed, wedged (cancelled by the watchdog) or stopped: either way nothing from
            # this broker is being read now, and /health must not say otherwise.
            self._ended(exc)
            raise

    def _ended(self, exc: BaseException) -> None:
        crashed = self._decoding
        self._decoding = None
        now = self.clock.time()
        if crashed is not None:
            topic, payload = crashed
            self._poison.add((topic, digest(topic, payload)))
            log.error(
                "mqtt %s: a message on %s crashed its decoder; it is counted as malformed "
                "from now on",
                self.broker.id,
                topic,
            )
            for dev in self._routes.get(topic, ()):
                dev.health.bad_data(now, CodecError("message crashed the decoder"))
        for d in self.devices:
            if isinstance(exc, asyncio.CancelledError):
                d.health.connected = False  # stopping (or restarting): not an outage to log
            else:
                d.health.failed(now, DeviceIOError(f"broker service {self.broker.id} crashed"))

    async def handle_batch(self, batch: list[Inbound]) -> asyncio.Future[Any] | None:
        """Decode a batch and publish its readings; returns what resolves once they commit."""
        now = self.clock.time()
        out: list[Reading] = []
        routes = self._routes
        store = self.store
        receipts: list[tuple[str, int, int, str]] = []
        redelivered: dict[int, Receipt | None] = {}
        if store is not None and any(m[4] and m[2] for m in batch):
            redelivered = await self._lookup([m for m in batch if m[4] and m[2]])
        poison = self._poison
        limit = self.max_payload
        for topic, payload, qos, mid, dup in batch:
            devices = routes.get(topic, ())
            if not devices and self.auto:
                devices = self._appeared(topic, now)
            if devices:
                if len(payload) > limit or (poison and (topic, digest(topic, payload)) in poison):
                    for dev in devices:
                        dev.health.bad_data(now, CodecError(_refusal(payload, limit)))
                    continue
                start = len(out)
                self._decoding = (topic, payload)
                for dev in devices:
                    out += dev.handle(topic, payload, now)
                self._decoding = None
                if qos and store is not None and len(out) > start:
                    if dup and mid in redelivered:
                        out[start:] = self._unstored(out[start:], redelivered[mid])
                    if len(out) > start:
                        receipts.append(
                            (self.client_id, mid, digest(topic, payload), _stamps(out, start))
                        )
            if self._waiters:
                self._answer(topic, payload)
        if store is None:
            if out:
                await self.bus.publish_many(out)
            return None
        if receipts:
            # Queued before the readings: it commits with the first of them or earlier, never
            # after; a redelivery then finds out which of its points are already stored.

            def put(conn: sqlite3.Connection) -> None:
                conn.executemany(_PUT_RECEIPT, receipts)

            store.write_in_transaction(put)
        if out:
            await self.bus.publish_many(out)
        return store.barrier()

    def _appeared(self, topic: str, now: float) -> list[MqttDevice]:
        """A device of an auto_devices group publishing for the first time: add it."""
        for group in self.auto:
            level = group.level(topic)
            if level is None:
                continue
            dev_id = device_id_for(group.spec.id_prefix, level)
            if not group.allows(level):
                group.refuse(self.broker.id, level, "not in the allow list")
            elif len(group.created) >= group.spec.max_devices:
                group.refuse(self.broker.id, level, f"max_devices {group.spec.max_devices}")
            elif not dev_id or dev_id in self._ids:
                group.refuse(self.broker.id, level, f"device id {dev_id!r} is taken or empty")
            else:
                return [self._add(group, dev_id, level, now)]
            return []
        return []

    def _add(self, group: AutoGroup, dev_id: str, level: str, now: float) -> MqttDevice:
        cfg = DeviceConfig(
            id=dev_id,
            profile=group.spec.profile,
            zone=group.spec.zone,
            broker=self.broker.id,
            address=level,
        )
        health = (
            self._health.register(dev_id, "mqtt")
            if self._health is not None
            else DeviceHealth(dev_id, "mqtt")
        )
        dev = MqttDevice(cfg, group.section, health)
        self.devices.append(dev)
        self._ids.add(dev_id)
        self._added[dev_id] = cfg
        group.created.append(dev_id)
        for t in dev.codec.topics:
            self._routes.setdefault(t, []).append(dev)
        if self.on_added is not None:
            self.on_added(dev)
        log.info("mqtt %s: new device %s (topic level %r)", self.broker.id, dev_id, level)
        return dev

    async def _lookup(self, msgs: list[Inbound]) -> dict[int, Receipt | None]:
        """Receipts of redelivered messages, read after everything queued has committed."""
        assert self.store is not None
        self.redelivered += len(msgs)
        client = self.client_id
        keys = [(m[3], digest(m[0], m[1])) for m in msgs]

        def read(conn: sqlite3.Connection) -> dict[int, Receipt | None]:
            found: dict[int, Receipt | None] = {}
            for mid, dg in keys:
                row = conn.execute(
                    "SELECT digest, stamps FROM mqtt_receipts WHERE client=? AND mid=?",
                    (client, mid),
                ).fetchone()
                if row is None or row[0] != dg:
                    found[mid] = None  # not stored (or the id was reused): a new message
                    continue
                stamps: dict[str, tuple[float, frozenset[str]]] = {}
                for line in row[1].split("\n"):
                    dev, ts = line.rsplit(" ", 1)
                    points = conn.execute(
                        "SELECT s.point FROM readings r JOIN series s ON s.id = r.series_id "
                        "WHERE s.device_id=? AND r.ts=?",
                        (dev, float(ts)),
                    ).fetchall()
                    stamps[dev] = (float(ts), frozenset(p for (p,) in points))
                found[mid] = Receipt(stamps)
            return found

        result: dict[int, Receipt | None] = await self.store.run_job(read)
        return result

    def _unstored(self, readings: list[Reading], receipt: Receipt | None) -> list[Reading]:
        """The readings of a redelivered message not in the store yet, at their first time."""
        if receipt is None:
            return readings
        out = []
        for r in readings:
            stamp = receipt.stamps.get(r.device_id)
            if stamp is None:
                out.append(r)
            elif r.point not in stamp[1]:
                out.append(make_reading(r.device_id, r.point, r.value, stamp[0], r.unit))
        self.deduplicated += len(readings) - len(out)
        return out

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
