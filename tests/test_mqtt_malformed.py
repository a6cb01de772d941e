"""Malformed payloads through a real Mosquitto never stop ingest, and QoS 1 messages are
acknowledged only after the commit that accepts their readings (a redelivery stores nothing
twice)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import DriverContext
from drivers.errors import CodecError
from drivers.mqtt import factory
from drivers.mqtt.codec import DeviceCodec
from drivers.mqtt.service import BrokerService
from edge_agent.bus import Bus, Overflow
from edge_agent.clock import ManualClock
from edge_agent.config.model import BrokerConfig, DeviceConfig, VenueConfig, VenueSection
from edge_agent.health import HealthRegistry
from edge_agent.messages import Reading
from firmware_profiles.loader import load_library
from simulators.mqtt.devices import GenericSensorSim
from simulators.mqtt.malformed import BAD_AVAILABILITY, BAD_STATE
from tests.helpers import until
from tests.peers import mqtt as peers

mosquitto = peers.mosquitto  # fixture
rig_factory = peers.rig_factory  # fixture


def stored(db: str, device: str, point: str) -> list[tuple[float, float]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT r.ts, r.value FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE s.device_id = ? AND s.point = ? ORDER BY r.ts",
            (device, point),
        ).fetchall()
    finally:
        conn.close()


async def test_every_malformed_payload_is_counted_logged_once_and_ingest_goes_on(
    mosquitto, rig_factory, clock, caplog
):
    bad = GenericSensorSim(mosquitto.host, mosquitto.port, "bad-board", clock, seed=1)
    good = GenericSensorSim(mosquitto.host, mosquitto.port, "good-board", clock, seed=2)
    rig = await rig_factory(
        mosquitto,
        [
            ("bad", "generic-json-sensor", bad.address),
            ("good", "generic-json-sensor", "good-board"),
        ],
        store=True,
    )
    await bad.start()
    await good.start()
    caplog.set_level(logging.WARNING, logger="edge_agent.devices")
    try:
        health = rig.ctx.health.get("bad")
        assert health is not None
        for payload in BAD_STATE.values():
            await bad.send(bad.data_topic, payload)
        for payload in BAD_AVAILABILITY.values():
            await bad.send(bad.availability, payload)
        sent = len(BAD_STATE) + len(BAD_AVAILABILITY)
        await until(lambda: health.malformed == sent, 20, f"{sent} malformed counted")
        # The loop goes on, for the other device and for the one that sent the garbage.
        await clock.advance(1)
        await good.tick()
        await bad.send(bad.data_topic, json.dumps({"temperature": 4.25}))
        await rig.wait_point("good", "temperature")
        await rig.wait_point("bad", "temperature", lambda r: r.value == 4.25)
        assert not rig.task.done()
        assert health.malformed == sent
        malformed_logs = [r for r in caplog.records if "bad: malformed" in r.getMessage()]
        assert len(malformed_logs) == 1
        assert rig.ctx.health.get("good").malformed == 0  # type: ignore[union-attr]
        # Everything was acknowledged, garbage too (it is counted, not waited for).
        assert rig.writer is not None
        await rig.writer.flush()
        await until(lambda: rig.service.link.unacknowledged == 0, 10, "all acknowledged")
        assert rig.service.link.acked >= sent + 2
        assert [v for _, v in stored(rig.writer.path, "bad", "temperature")][-1] == 4.25
    finally:
        await bad.stop()
        await good.stop()


async def test_acknowledged_only_after_commit_and_a_redelivery_is_stored_once(
    mosquitto, rig_factory, clock
):
    sim = GenericSensorSim(mosquitto.host, mosquitto.port, "acked-board", clock, seed=3)
    rig = await rig_factory(mosquitto, [("board", "generic-json-sensor", sim.address)], store=True)
    writer = rig.writer
    assert writer is not None
    await sim.start()
    gate = threading.Event()
    try:
        await until(lambda: rig.service.link.acked >= 1, 10, "the retained 'online' acked")
        # Hold the store: nothing queued from now on commits until the gate opens.
        held = asyncio.ensure_future(writer.run_job(lambda _conn: gate.wait(30)))
        link = rig.service.link
        acked_before = link.acked
        for i in range(5):
            await clock.advance(1)
            # No device time: stamped on arrival, so only the receipt can tell a redelivery.
            await sim.send(sim.data_topic, json.dumps({"temperature": 3.0 + i}))
        await until(lambda: link.unacknowledged == 5, 10, "5 handled, waiting for the commit")
        assert link.acked == acked_before  # handled, on the bus, not committed: not acked

        # The box goes away before the commit: the broker still holds all 5.
        rig.task.cancel()
        await asyncio.gather(rig.task, return_exceptions=True)
        gate.set()
        await held
        await writer.flush()  # the readings it had queued commit now, after the link is gone
        first = stored(writer.path, "board", "temperature")
        assert [v for _, v in first] == [3.0, 4.0, 5.0, 6.0, 7.0]

        # The same session comes back: the broker sends the 5 again, flagged as duplicates.
        ctx = DriverContext(rig.ctx.config, rig.ctx.bus, clock, HealthRegistry(), store=writer)
        lib = load_library()
        pairs = [(d, lib.profiles[d.profile]) for d in rig.ctx.config.devices]
        (svc_def,) = factory.build(ctx, pairs)
        again: BrokerService = ctx.shared["mqtt"]["local"]
        await clock.advance(60)
        task = asyncio.create_task(svc_def.run())
        try:
            await until(lambda: again.redelivered >= 5, 10, "5 redelivered")
            await until(lambda: again.link.unacknowledged == 0, 10, "redeliveries acked")
            await writer.flush()
            assert stored(writer.path, "board", "temperature") == first  # once, first time
            assert again.deduplicated >= 5
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        gate.set()
        await sim.stop()


# ---- property: arbitrary payloads through Mosquitto and the driver ---------------------------

_PROFILE = load_library().profiles["generic-json-sensor"]
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["temperature", "humidity", "ts", "x"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)
_payloads = st.one_of(
    st.binary(max_size=300),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([p for p in BAD_STATE.values() if len(p) < 1_000_000]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=st.lists(st.tuples(st.sampled_from(["state", "status"]), _payloads), max_size=8))
def test_arbitrary_payloads_through_mosquitto_are_decoded_or_counted_and_the_loop_goes_on(
    mosquitto, msgs
):
    """Whatever arrives, the driver's count of malformed messages is the pure codec's, the
    service keeps running and a valid message after the rest is still read."""
    codec = DeviceCodec(_PROFILE.mqtt, "prop")  # the oracle: the same codec, no I/O
    expected = 0
    for kind, payload in msgs:
        try:
            d = codec.decode(f"sensors/prop/{kind}", payload, 1_750_000_000.0)
            expected += bool(d.problems)
        except CodecError:
            expected += 1
    asyncio.run(_through_the_broker(mosquitto, msgs, expected))


async def _through_the_broker(mosquitto: Any, msgs: list[tuple[str, bytes]], expected: int) -> None:
    client = f"prop-{uuid.uuid4().hex[:8]}"
    broker = BrokerConfig("p", port=mosquitto.port, client_id=client, keepalive_s=5)
    dev = DeviceConfig(id="prop", profile=_PROFILE.id, address="prop", broker="p")
    cfg = VenueConfig(VenueSection("prop", "Prop"), brokers=(broker,), devices=(dev,))
    bus = Bus()
    sub = bus.subscribe("t", (Reading,), 100_000, Overflow.DROP_NEWEST)
    health = HealthRegistry()
    ctx = DriverContext(cfg, bus, ManualClock(1_750_000_000.0), health)
    (svc,) = factory.build(ctx, [(dev, _PROFILE)])
    service: BrokerService = ctx.shared["mqtt"]["p"]
    task = asyncio.create_task(svc.run())
    try:
        await until(lambda: service.link.connected, 10, "connected")
        sim = GenericSensorSim(mosquitto.host, mosquitto.port, f"prop-pub-{client}", ManualClock())
        await sim.start()  # also publishes its own retained 'online' elsewhere: not ours
        try:
            for kind, payload in msgs:
                await sim.send(f"sensors/prop/{kind}", payload)
            await sim.send("sensors/prop/state", b'{"temperature": 21.5}')
        finally:
            await sim.stop()
        h = health.get("prop")
        assert h is not None

        got: list[Reading] = []

        def seen() -> bool:
            while len(sub.channel):
                item = sub.channel.drop_oldest()
                if item is not None:
                    got.append(item)
            return any(r.point == "temperature" and r.value == 21.5 for r in got)

        await until(seen, 10, "the valid message after the rest")
        assert not task.done()
        assert h.malformed == expected
        assert service.link.handled == service.link.received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
