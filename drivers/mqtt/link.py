"""One connection to one MQTT broker, shared by every device on it.

paho runs on the event loop itself, in its "external loop" mode: the loop watches the socket
and calls paho's `loop_read`/`loop_write` when it is ready, plus `loop_misc` every second for
keepalive. Only the blocking connect (DNS, TCP, TLS handshake) runs in a worker thread. An
earlier design ran paho in a network thread of its own; measured (bench/mqtt.py) it spent a
third of the driver's CPU on the GIL hand-offs between that thread, the loop and the store
writer, so there is no such thread now.

A readable socket is drained in one go (up to READ_BURST packets) into a deque that a pump task
decodes in batches. When decoding falls behind, the link stops watching the socket (the kernel
buffer fills and the broker queues for our persistent session) instead of the box buffering
without bound, and watches it again once the backlog is down to LOW_WATER.

The asyncio side owns the lifecycle: connect, subscribe everything (after every reconnect),
wait for the connection to drop, back off (capped, jittered, on the injected clock), repeat.
The session is persistent (no clean start, a session that never expires, stable client id), so
QoS 1 messages published while the box was away are delivered when it comes back.

Acknowledged means committed: paho runs with manual acknowledgement and a QoS 1 message is
acknowledged only when the commit future its batch handler returned has resolved (the store
committed the readings it produced). Until then the broker keeps it and, after a crash,
delivers it again. How many may wait unacknowledged is the broker's in-flight window, which
MQTT 5 lets the box set (Receive Maximum = `inflight_window`): large enough that commits, not
acknowledgements, set the pace; small enough to bound what a crash makes the broker resend.
Acknowledgements of a connection that has ended are dropped (the broker resends those
messages, flagged as duplicates, on the next connection).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.errors import DeviceIOError, DriverError
from drivers.mqtt import paho_publish
from edge_agent.backoff import Backoff
from edge_agent.clock import Clock
from edge_agent.config.model import BrokerConfig

log = logging.getLogger(__name__)
paho_publish.install()  # MQTT 5 PUBLISH without properties decoded at 3.1.1 cost

# (topic, payload, qos, message id, dup): dup is the broker's redelivery flag.
Inbound = tuple[str, bytes, int, int, bool]
HIGH_WATER = 20_000  # messages waiting to be decoded before the link stops reading
LOW_WATER = 5_000
READ_BURST = 500  # packets read per readable event before other tasks get their turn
ACK_EVERY = 20  # within a burst, acknowledge this often so the broker keeps sending
MISC_INTERVAL_S = 1.0  # paho's keepalive bookkeeping (pings, ping timeouts); real time
SESSION_NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5 Session Expiry Interval: keep it like 3.1.1 did


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
        on_batch: Callable[[list[Inbound]], Awaitable[asyncio.Future[Any] | None]],
        on_down: Callable[[BaseException], None],
        on_up: Callable[[], None] = lambda: None,
        rng_seed: str = "",
        backoff: Backoff | None = None,
        will: tuple[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.will = will  # (topic, payload) the broker publishes, retained, if we vanish
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
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._fd = -1  # the socket the loop watches, while a session is open
        self._reading = False
        self._received = 0  # PUBLISH packets handed over by paho, to tell progress in a burst
        self._puback_waiters: dict[int, asyncio.Future[None]] = {}
        self._puback_early: set[int] = set()
        # Batches waiting for their commit, in order: (commit future, [(index, mid, qos)]).
        self._unacked: collections.deque[
            tuple[asyncio.Future[Any] | None, list[tuple[int, int, int]]]
        ] = collections.deque()
        self._ack_wake = asyncio.Event()
        self._session_start = 0  # index (in receive order) of the session's first message
        self._taken = 0  # messages handed to on_batch since start
        self.acked = 0  # QoS 1/2 messages acknowledged to the broker since start
        self.handled = 0  # messages handled (the pump's heartbeat; set to received on restart)

    @property
    def backlog(self) -> int:
        """Messages received and not yet decoded."""
        return len(self._inbox)

    @property
    def paused(self) -> bool:
        """Connected but not reading: the backlog reached HIGH_WATER."""
        return self._fd >= 0 and not self._reading

    @property
    def received(self) -> int:
        """Messages received from the broker since start (decoded or still waiting)."""
        return self._received

    @property
    def unacknowledged(self) -> int:
        """QoS 1/2 messages handled whose commit (and so whose acknowledgement) is pending."""
        return sum(len(acks) for _, acks in self._unacked)

    # ---- the asyncio side ----------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        # A restart (the supervisor's, after a crash) starts from a clean slate: what was
        # received and not acknowledged comes again from the broker.
        self._inbox.clear()
        self._unacked.clear()
        self._session_start = self._taken = self.handled = self._received
        # The link's own tasks die with it: a crash in either ends run() for the supervisor.
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._pump(), name=f"mqtt:{self.broker.id}:pump")
            tg.create_task(self._acker(), name=f"mqtt:{self.broker.id}:acks")
            tg.create_task(self._sessions(), name=f"mqtt:{self.broker.id}:session")

    async def _sessions(self) -> None:
        while True:
            try:
                await self._session()
            except DeviceIOError as exc:
                self._on_down(exc)
            await self.clock.sleep(self._backoff.next())

    def publish(
        self, topic: str, payload: str, qos: int, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a message; the future completes when the broker has acknowledged it."""
        if self._client is None or not self.connected:
            raise DeviceIOError(f"broker {self.broker.id} is not connected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        info = self._client.publish(topic, payload.encode(), qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeviceIOError(f"publish failed: {mqtt.error_string(info.rc)}")
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
        self._session_start = self._received
        try:
            await asyncio.to_thread(self._connect, client)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise DeviceIOError(f"broker {self.broker.id}: cannot connect: {exc}") from exc
        stop_misc = self._attach(client, ended)
        try:
            rc = await asyncio.wait_for(asyncio.shield(connected), self.broker.keepalive_s)
            if rc != 0:
                reason = mqtt.connack_string(rc) if rc < 6 else f"reason code {rc}"
                raise DeviceIOError(f"broker {self.broker.id} refused the connection: {reason}")
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
            stop_misc()
            self._detach(client)
            self._fail_pubacks()

    def _fail_pubacks(self) -> None:
        waiters = list(self._puback_waiters.values())
        self._puback_waiters.clear()
        self._puback_early.clear()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(DeviceIOError("connection lost before the broker acknowledged"))

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()  # before draining: a later arrival wakes us again
            inbox = self._inbox
            while inbox:
                if len(inbox) <= 2000:
                    batch = list(inbox)
                    inbox.clear()
                else:
                    batch = [inbox.popleft() for _ in range(2000)]
                if not self._reading and len(inbox) < LOW_WATER:
                    self._watch()
                first = self._taken
                self._taken += len(batch)
                committed = await self._on_batch(batch)
                acks = [(first + i, m[3], m[2]) for i, m in enumerate(batch) if m[2]]
                if acks or committed is not None:
                    self._unacked.append((committed, acks))
                    self._ack_wake.set()
                self.handled += len(batch)

    async def _acker(self) -> None:
        """Acknowledge each batch's messages once its commit is done, in receive order."""
        pending = self._unacked
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            while pending:
                committed, _ = pending[0]
                if committed is not None and not committed.done():
                    await asyncio.wait((committed,))
                    continue  # the deque may have been cleared meanwhile (a restart)
                _, acks = pending.popleft()
                if committed is not None:
                    committed.result()  # a failed commit ends the link: nothing is acked
                self._ack(acks)
            client = self._client
            if client is not None and self._fd >= 0 and client.want_write():
                client.loop_write()

    def _ack(self, acks: list[tuple[int, int, int]]) -> None:
        client = self._client
        # Not `connected`: the broker resends what was in flight right after CONNACK, before
        # our subscriptions are renewed, and those must be acknowledged on this connection.
        if client is None or self._fd < 0:
            return  # the connection is gone: the broker resends them on the next one
        start = self._session_start
        for index, mid, qos in acks:
            if index >= start:  # received on this connection: its message id is still ours
                client.ack(mid, qos)
                self.acked += 1

    # ---- paho on the event loop -----------------------------------------------------------

    def _attach(self, client: mqtt.Client, ended: asyncio.Event) -> Callable[[], None]:
        """Hand the connected socket to the loop; returns what stops the keepalive timer."""
        loop = self._loop
        assert loop is not None
        sock = client.socket()
        if sock is None:  # pragma: no cover - connect() returned without a socket
            raise DeviceIOError(f"broker {self.broker.id}: connection lost")
        self._fd = sock.fileno()

        def register_write(_c: Any, _u: Any, _s: Any) -> None:
            if self._fd >= 0:
                loop.add_writer(self._fd, client.loop_write)

        def unregister_write(_c: Any, _u: Any, _s: Any) -> None:
            if self._fd >= 0:
                loop.remove_writer(self._fd)

        def socket_close(_c: Any, _u: Any, _s: Any) -> None:
            self._unwatch_all()
            ended.set()

        # Set only now: during connect() (in a worker thread) paho wrote CONNECT itself.
        client.on_socket_register_write = register_write
        client.on_socket_unregister_write = unregister_write
        client.on_socket_close = socket_close
        self._watch()
        if client.want_write():
            register_write(client, None, sock)

        timer: list[asyncio.TimerHandle] = []

        def misc() -> None:
            if client.loop_misc() == mqtt.MQTT_ERR_SUCCESS:
                timer[:] = [loop.call_later(MISC_INTERVAL_S, misc)]

        timer.append(loop.call_later(MISC_INTERVAL_S, misc))
        return lambda: timer[0].cancel()

    def _detach(self, client: mqtt.Client) -> None:
        if client.socket() is not None:
            client.disconnect()  # a clean DISCONNECT: the broker must not send our last will
            client.loop_write()  # paho closes the socket once DISCONNECT is out
        sock = client.socket()
        self._unwatch_all()
        if sock is not None:  # could not even say goodbye
            sock.close()

    def _watch(self) -> None:
        if self._fd >= 0 and not self._reading and self._client is not None:
            assert self._loop is not None
            self._loop.add_reader(self._fd, self._readable, self._client)
            self._reading = True

    def _unwatch_all(self) -> None:
        if self._fd >= 0:
            assert self._loop is not None
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = -1
        self._reading = False

    def _readable(self, client: mqtt.Client) -> None:
        sock = client.socket()
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted, not in the fd
        for i in range(1, READ_BURST + 1):
            before = self._received
            client.loop_read()
            if client.socket() is None:
                break  # connection lost: paho closed it and called on_disconnect
            if i % ACK_EVERY == 0 and client.want_write():
                client.loop_write()
            if self._received == before and not (pending is not None and pending()):
                break  # nothing more (or a packet other than PUBLISH): back to the loop
        # Send the PUBACKs now, not on the loop's next turn: the broker keeps only so many
        # messages in flight per client (Mosquitto: 20 by default) and waits for our acks.
        if client.socket() is not None and client.want_write():
            client.loop_write()
        if self._inbox:
            self._wake.set()
            if len(self._inbox) >= HIGH_WATER and self._reading and self._fd >= 0:
                assert self._loop is not None
                self._loop.remove_reader(self._fd)
                self._reading = False

    # ---- paho callbacks ---------------------------------------------------------------------

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
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        c.connect_timeout = 5.0
        if b.tls:
            c.tls_set(ca_certs=b.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if b.username is not None:
            c.username_pw_set(b.username, self._password)
        if self.will is not None:
            c.will_set(self.will[0], self.will[1].encode(), qos=1, retain=True)
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
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        props.ReceiveMaximum = self.broker.inflight_window
        try:
            client.connect(
                self.broker.host,
                self.broker.port,
                self.broker.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except BaseException as exc:
            _close_dropped_sockets(exc)
            raise

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # On the loop, inside loop_read. Nothing is acknowledged here (manual_ack): see _acker.
        payload = msg.payload
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # no broker should forward one; routed nowhere, still acked
            topic = ""
        self._inbox.append(
            (
                topic,
                payload if type(payload) is bytes else bytes(payload),
                msg.qos,
                msg.mid,
                msg.dup,
            )
        )
        self._received += 1

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        fut = self._puback_waiters.pop(mid, None)
        if fut is None:
            self._puback_early.add(mid)
        else:
            _settle(fut, None)


def _close_dropped_sockets(exc: BaseException) -> None:
    """paho (2.2) drops the socket it opened when the TLS handshake fails, without closing it:
    close what the failing frames still hold, or every retry leaks a descriptor until the
    garbage collector finds it."""
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next


def _settle(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
