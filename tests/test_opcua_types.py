"""OPC-UA built-in scalar types a kitchen server uses, read and subscribed from a real asyncua
server: LocalizedText, QualifiedName, DateTime, enumerations, 64-bit integers, ByteString, Guid;
and the first value after a subscription is stored once, not twice."""

from __future__ import annotations

import asyncio
import enum
import random
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from asyncua import Server, ua
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError
from drivers.opcua import codec
from drivers.opcua.coordinator import OpcuaCoordinator
from edge_agent.bus import Bus
from edge_agent.clock import ManualClock
from edge_agent.config.opcua_address import parse_address
from edge_agent.health import HealthRegistry
from firmware_profiles.loader import load_profile
from simulators.opcua.combi_server import free_port
from tests.helpers import until
from tests.peers.opcua import drain, reading_tap

NS = "urn:test:kitchen-types"
WHEN = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
GUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
NODES = {
    # name: (browse name, variant type, server value, expected published value)
    "program": (
        "ProgramName",
        ua.VariantType.LocalizedText,
        ua.LocalizedText("Roast chicken", "en"),
        "Roast chicken",
    ),
    "phase": ("Phase", ua.VariantType.QualifiedName, ua.QualifiedName("Grill", 2), "Grill"),
    "started": ("StartedAt", ua.VariantType.DateTime, WHEN, WHEN.timestamp()),
    "state": ("State", ua.VariantType.Int32, 3, "standby"),
    "cycles": ("Cycles", ua.VariantType.Int64, -(2**40), -(2**40)),
    "energy_wh": ("EnergyWh", ua.VariantType.UInt64, 2**63 + 4096, float(2**63 + 4096)),
    "recipe_id": ("RecipeId", ua.VariantType.ByteString, b"\x01\xab\xff", "01abff"),
    "batch": ("Batch", ua.VariantType.Guid, GUID, str(GUID)),
}
KINDS = {"program": "program", "phase": "state", "started": "status", "state": "mode"}

PROFILE = f"""
id = "test-kitchen-types"
vendor = "Test"
model = "Types"
firmware = "*"
transport = "opcua"
verification = "simulator_only"
description = "one node per built-in scalar type"

[opcua]
root = "k:Devices"
publishing_interval_ms = 50
refresh_interval_s = 3600.0
timeout_s = 5.0

[opcua.namespaces]
k = "{NS}"
""" + "".join(
    f'\n[[opcua.points]]\nname = "{name}"\nkind = "{KINDS.get(name, "counter")}"\n'
    f'path = "k:{browse}"\n'
    + ('enum = { "1" = "running", "3" = "standby" }\n' if name == "state" else "")
    for name, (browse, *_rest) in NODES.items()
)


@pytest.fixture
async def server():
    srv = Server()
    await srv.init()
    url = f"opc.tcp://127.0.0.1:{free_port()}/types/"
    srv.set_endpoint(url)
    idx = await srv.register_namespace(NS)
    devices = await srv.nodes.objects.add_object(idx, "Devices")
    oven = await devices.add_object(idx, "Oven_1")
    nodes = {}
    for name, (browse, vt, value, _) in NODES.items():
        nodes[name] = await oven.add_variable(idx, browse, ua.Variant(value, vt))
    await srv.start()
    try:
        yield nodes, url
    finally:
        await srv.stop()


async def test_every_builtin_scalar_is_recorded_once_after_subscribing(server, tmp_path):
    nodes, url = server
    path = tmp_path / "test-kitchen-types.toml"
    path.write_text(PROFILE)
    profile = load_profile(str(path))
    assert profile.opcua is not None
    bus, clock = Bus(), ManualClock(1_750_000_000.0)
    tap = reading_tap(bus)
    health = HealthRegistry().register("oven", "opcua")
    coord = OpcuaCoordinator(
        "oven",
        parse_address(f"{url}#Oven_1"),
        "none",
        profile.opcua,
        bus,
        clock,
        health,
        rng=random.Random(1),
    )
    task = asyncio.create_task(coord.run())
    try:
        await until(lambda: coord.mode == "subscription", what="subscribed")
        got = []
        # every node's initial notification has arrived (it is what the fix discards)
        await until(lambda: not coord._before_subscribe, what="initial notifications")
        got += drain(tap)
        assert health.malformed == 0, health.last_error
        values = {r.point: r.value for r in got}
        assert values == {name: expected for name, (*_, expected) in NODES.items()}
        counts = Counter(r.point for r in got)
        assert set(counts.values()) == {1}, counts  # stored once, not read + notified
        # a later change is a reading again
        bread = ua.Variant(ua.LocalizedText("Bread", "en"), ua.VariantType.LocalizedText)
        await nodes["program"].write_value(bread)
        later: list = []
        await until(lambda: bool(later.extend(drain(tap)) or later), what="the change")
        assert [(r.point, r.value) for r in later] == [("program", "Bread")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _Colour(enum.IntEnum):
    RED = 1
    GREEN = 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (ua.LocalizedText("Dampf", "de"), "Dampf"),
        (ua.QualifiedName("Cooling", 3), "Cooling"),
        (datetime(1970, 1, 2, tzinfo=UTC), 86400.0),
        (datetime(1970, 1, 2), 86400.0),  # naive: OPC-UA times are UTC
        (_Colour.GREEN, 2),
        (b"", ""),
        (ua.NodeId(5, 2), "ns=2;i=5"),
    ],
)
def test_scalars_become_plain_values(raw, expected):
    assert codec.scalar("p", raw) == expected


@pytest.mark.parametrize(
    "raw",
    [ua.LocalizedText(None), datetime(1601, 1, 1, tzinfo=UTC), b"x" * (codec.MAX_BYTES + 1)],
)
def test_scalars_without_a_value_are_malformed(raw):
    with pytest.raises(CodecError):
        codec.scalar("p", raw)


_SCALARS = st.one_of(
    st.text(max_size=50).map(lambda t: ua.LocalizedText(t, "en")),
    st.text(max_size=50).map(lambda t: ua.QualifiedName(t, 1)),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),
    st.binary(max_size=600),
    st.integers(-(2**64), 2**64),
    st.uuids(),
    st.floats(allow_nan=True),
    st.none(),
)


@given(_SCALARS)
def test_any_scalar_decodes_to_a_storable_value_or_a_codec_error(raw):
    from firmware_profiles.sections.opcua import OpcuaPoint

    point = OpcuaPoint(name="p", kind="counter", path="k:P")
    try:
        value = codec.decode_value(point, raw)
    except CodecError:
        return
    assert isinstance(value, bool | int | float | str)
    if isinstance(value, int) and not isinstance(value, bool):
        assert -(2**63) <= value < 2**63  # fits SQLite's INTEGER
