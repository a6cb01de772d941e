"""The broker link on the event loop against a real Mosquitto: TLS with a CA the box trusts,
and back-pressure (a slow consumer stops the link reading; memory stays bounded; nothing is
lost, duplicated or reordered once it catches up)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from drivers.mqtt import link as link_module
from drivers.mqtt.broker import Mosquitto
from drivers.mqtt.link import BrokerLink, Inbound
from edge_agent.clock import ManualClock
from edge_agent.config.model import BrokerConfig
from tests.helpers import until

TOPIC = "site/sensor-1/state"


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        b = b.add_extension(san, critical=False)
    return b.sign(ca_key, hashes.SHA256())


def _pem(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, str]]:
    d = tmp_path_factory.mktemp("tls")
    ca_key, srv_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _cert("test venue CA", ca_key, None, ca_key)
    srv = _cert("127.0.0.1", srv_key, ca, ca_key)
    ca_file = _pem(d / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    cert = _pem(d / "srv.pem", srv.public_bytes(serialization.Encoding.PEM))
    key = _pem(
        d / "srv.key",
        srv_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
    broker = Mosquitto(d / "broker", tls=(cert, key))
    broker.start()
    try:
        yield broker, ca_file
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def plain_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("plain"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def publish_all(port: int, n: int, ca_file: str | None = None) -> None:
    """A device publishing n numbered QoS 1 messages as fast as it can (in a worker thread)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{port}-{n}")
    if ca_file:
        c.tls_set(ca_certs=ca_file)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        infos = [c.publish(TOPIC, str(i).encode(), qos=1) for i in range(n)]
        for info in infos:
            info.wait_for_publish(20)
    finally:
        c.disconnect()
        c.loop_stop()


def start_link(
    broker: BrokerConfig, clock: ManualClock, on_batch: Callable[[list[Inbound]], object]
) -> tuple[BrokerLink, asyncio.Task[None]]:
    async def batch(msgs: list[Inbound]) -> None:
        await on_batch(msgs)  # type: ignore[misc]

    link = BrokerLink(broker, f"box-{broker.id}", clock, on_batch=batch, on_down=lambda _e: None)
    link.subscriptions[TOPIC] = 1
    return link, asyncio.create_task(link.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_tls_link_with_a_trusted_ca_receives_every_message_in_order(
    tls_broker: tuple[Mosquitto, str], tmp_path: Path, clock: ManualClock
) -> None:
    broker, ca_file = tls_broker
    pw = tmp_path / "mqtt.pass"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    cfg = BrokerConfig(
        "tls", port=broker.port, tls=True, ca_file=ca_file, username="box", password_file=str(pw)
    )
    got: list[bytes] = []

    async def collect(msgs: list[Inbound]) -> None:
        got.extend(m[1] for m in msgs)

    link, task = start_link(cfg, clock, collect)
    try:
        await until(lambda: link.connected, 10, "TLS connection")
        await asyncio.to_thread(publish_all, broker.port, 2000, ca_file)
        await until(lambda: len(got) >= 2000, 20, "all messages over TLS")
        assert got == [str(i).encode() for i in range(2000)]
    finally:
        await stop(task)


async def test_untrusted_broker_certificate_is_a_connect_failure(
    tls_broker: tuple[Mosquitto, str], tmp_path: Path, clock: ManualClock
) -> None:
    broker, _ca = tls_broker
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("someone else", other_key, None, other_key)
    wrong_ca = _pem(tmp_path / "other.pem", other.public_bytes(serialization.Encoding.PEM))
    downs: list[BaseException] = []
    link = BrokerLink(
        BrokerConfig("tls", port=broker.port, tls=True, ca_file=wrong_ca),
        "box-untrusting",
        clock,
        on_batch=lambda _m: asyncio.sleep(0),
        on_down=downs.append,
    )
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: bool(downs), 10, "connect refused by our own TLS check")
        assert "cannot connect" in str(downs[0]) and not link.connected
    finally:
        await stop(task)


async def test_slow_consumer_pauses_reading_and_loses_nothing(
    plain_broker: Mosquitto, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "HIGH_WATER", 40)
    monkeypatch.setattr(link_module, "LOW_WATER", 10)
    monkeypatch.setattr(link_module, "READ_BURST", 5)
    gate = asyncio.Event()
    got: list[bytes] = []
    most_waiting = 0

    async def slow(msgs: list[Inbound]) -> None:
        nonlocal most_waiting
        most_waiting = max(most_waiting, link.backlog)
        await gate.wait()
        got.extend(m[1] for m in msgs)

    link, task = start_link(BrokerConfig("plain", port=plain_broker.port), clock, slow)
    n = 3000
    try:
        await until(lambda: link.connected, 10, "connected")
        pub = asyncio.create_task(asyncio.to_thread(publish_all, plain_broker.port, n))
        await until(lambda: link.paused, 10, "the link stops reading")
        held = link.received
        # At most HIGH_WATER + a burst waiting, plus the batch being decoded.
        assert held <= 2 * (40 + 5) and link.backlog <= 40 + 5
        await pub  # the broker has all of them now; the box still holds only what it had
        assert link.received == held and link.paused
        gate.set()
        await until(lambda: len(got) >= n, 30, "everything once the consumer catches up")
        assert got == [str(i).encode() for i in range(n)]  # none lost, doubled or reordered
        assert not link.paused and most_waiting <= 40 + 5
    finally:
        gate.set()
        await stop(task)
