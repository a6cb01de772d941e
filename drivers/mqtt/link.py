"""One connection to one MQTT broker, shared by every device on it.

paho runs its network loop in a thread of ours (one per broker, alive for one connection);
messages cross into asyncio through a deque and a single `call_soon_threadsafe` per burst, not
per message. When asyncio falls behind, the network thread stops reading (the broker queues
for our persistent session) instead of the box buffering without bound.

The asyncio side owns the lifecycle: connect, subscribe everything (after every reconnect),
wait for the connection to drop, back off (capped, jittered, on the injected clock), repeat.
The session is persistent (clean_session=False, stable client id), so QoS 1 messages published
while the box was away are delivered when it comes back.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.backoff import Backoff
from drivers.errors import DeviceIOError, DriverError
from edge_agent.clock import Clock
from edge_agent.config.model import BrokerConfig

log = logging.getLogger(__name__)

Inbound = tuple[str, bytes]
HIGH_WATER = 20_000  # messages waiting for asyncio before the network thread pauses
LOW_WATER = 5_000


def read_password(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        # The path is fine to show; the content never is.
        raise DriverError(f"cannot read password_file {path}: {exc.strerror}") from exc


class BrokerLink:
    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        clock: Clock,
        *,
        on_batch: Callable[[list[Inbound]], Awaitable[None]],
        on_down: Callable[[BaseException], None],
        on_up: Callable[[], None] = lambda: None,
        rng_seed: str = "",
        backoff: Backoff | None = None,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.clock = clock
        self.subscriptions: dict[str, int] = {}  # topic → qos
        self._on_batch = on_batch
        self._on_down = on_down
        self._on_up = on_up
        self._backoff = backoff or Backoff(base=0.5, cap=30.0, rng=random.Random(rng_seed))
        self._password = read_password(broker.password_file) if broker.password_file else None
        self.connected = False
        self.connects = 0
        self._inbox: collections.deque[Inbound] = collections.deque()
        self._room = threading.Event()
        self._room.set()
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._client: mqtt.Client | None = None
        self._puback_lock = threading.Lock()
        self._puback_waiters: dict[int, asyncio.Future[None]] = {}
        self._puback_early: set[int] = set()

    # ---- the asyncio side ----------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        pump = asyncio.create_task(self._pump(), name=f"mqtt:{self.broker.id}:pump")
        try:
            while True:
                try:
                    await self._session()
                except DeviceIOError as exc:
                    self._on_down(exc)
                await self.clock.sleep(self._backoff.next())
        finally:
            pump.cancel()
            self._stop.set()
            self._room.set()

    def publish(
        self, topic: str, payload: str, qos: int, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a message; the future completes when the broker has acknowledged it."""
        if self._client is None or not self.connected:
            raise DeviceIOError(f"broker {self.broker.id} is not connected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        # Never call into paho while holding our lock: paho calls on_publish under its own.
        info = self._client.publish(topic, payload.encode(), qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeviceIOError(f"publish failed: {mqtt.error_string(info.rc)}")
        with self._puback_lock:
            if qos == 0 or info.mid in self._puback_early:
                self._puback_early.discard(info.mid)
                fut.set_result(None)
            else:
                self._puback_waiters[info.mid] = fut
        return fut

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        connected: asyncio.Future[int] = loop.create_future()
        subscribed: asyncio.Future[list[int]] = loop.create_future()
        ended = asyncio.Event()
        client = self._make_client(connected, subscribed, ended)
        self._client = client
        try:
            await asyncio.to_thread(self._connect, client)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise DeviceIOError(f"broker {self.broker.id}: cannot connect: {exc}") from exc
        self._stop.clear()
        thread = threading.Thread(
            target=self._network, args=(client, ended), name=f"mqtt:{self.broker.id}", daemon=True
        )
        thread.start()
        try:
            rc = await asyncio.wait_for(asyncio.shield(connected), self.broker.keepalive_s)
            if rc != 0:
                raise DeviceIOError(
                    f"broker {self.broker.id} refused the connection: {mqtt.connack_string(rc)}"
                )
            if self.subscriptions:
                # Always, even with a session present: a broker restarted without its
                # persistence file has forgotten them.
                result, _ = client.subscribe(list(self.subscriptions.items()))
                if result != mqtt.MQTT_ERR_SUCCESS:
                    raise DeviceIOError(f"subscribe failed: {mqtt.error_string(result)}")
                codes = await asyncio.wait_for(subscribed, self.broker.keepalive_s)
                refused = [t for t, rc in zip(self.subscriptions, codes, strict=False) if rc >= 128]
                if refused:
                    # The broker's ACL: report once, keep the rest running.
                    log.warning("mqtt %s: subscription refused for %s", self.broker.id, refused[:5])
            self.connected = True
            self.connects += 1
            self._backoff.reset()
            self._on_up()
            await ended.wait()
            raise DeviceIOError(f"broker {self.broker.id}: connection lost")
        except TimeoutError as exc:
            raise DeviceIOError(f"broker {self.broker.id}: no CONNACK") from exc
        finally:
            self.connected = False
            self._stop.set()
            self._room.set()
            client.disconnect()
            await asyncio.to_thread(thread.join, 5)
            self._fail_pubacks()

    def _fail_pubacks(self) -> None:
        with self._puback_lock:
            waiters = list(self._puback_waiters.values())
            self._puback_waiters.clear()
            self._puback_early.clear()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(DeviceIOError("connection lost before the broker acknowledged"))

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._wake_pending = False  # cleared before draining: a later append wakes us again
            inbox = self._inbox
            while inbox:
                n = min(len(inbox), 2000)
                batch = [inbox.popleft() for _ in range(n)]
                if len(inbox) < LOW_WATER:
                    self._room.set()
                await self._on_batch(batch)

    # ---- paho and its thread --------------------------------------------------------------

    def _make_client(
        self,
        connected: asyncio.Future[int],
        subscribed: asyncio.Future[list[int]],
        ended: asyncio.Event,
    ) -> mqtt.Client:
        b = self.broker
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        c.connect_timeout = 5.0
        if b.tls:
            c.tls_set(ca_certs=b.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if b.username is not None:
            c.username_pw_set(b.username, self._password)
        loop = self._loop
        assert loop is not None

        def on_connect(_c: Any, _u: Any, _flags: Any, rc: Any, _p: Any) -> None:
            code = rc.value if hasattr(rc, "value") else int(rc)
            loop.call_soon_threadsafe(_settle, connected, code)

        def on_disconnect(_c: Any, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(ended.set)

        def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
            values = [rc.value if hasattr(rc, "value") else int(rc) for rc in codes]
            loop.call_soon_threadsafe(_settle, subscribed, values)

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_disconnect = on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        return c

    def _connect(self, client: mqtt.Client) -> None:
        client.connect(self.broker.host, self.broker.port, self.broker.keepalive_s)

    def _network(self, client: mqtt.Client, ended: asyncio.Event) -> None:
        loop = self._loop
        assert loop is not None
        try:
            while not self._stop.is_set():
                rc = client.loop(timeout=0.5)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
        finally:
            loop.call_soon_threadsafe(ended.set)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # paho acknowledges a QoS 1 message when this returns: pausing here keeps the rest
        # at the broker.
        while len(self._inbox) >= HIGH_WATER and not self._stop.is_set():
            self._room.clear()
            self._room.wait(0.5)
        self._inbox.append((msg.topic, bytes(msg.payload)))
        if not self._wake_pending:
            self._wake_pending = True
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._wake.set)

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._puback_lock:
            fut = self._puback_waiters.pop(mid, None)
            if fut is None:
                self._puback_early.add(mid)
                return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, fut, None)


def _settle(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
