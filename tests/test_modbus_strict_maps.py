"""Controllers that refuse reads spanning holes in their map (exception 02), for every Modbus
profile in the library, over real Modbus TCP and RTU peers: the coordinator splits the refused
blocks, reads every point, keeps what it learnt across a restart, and never throws away a block
that was read when another one fails."""

from __future__ import annotations

import logging

import pytest

from drivers.errors import DeviceIOError
from drivers.modbus import frames
from drivers.modbus.codec import plan_reads
from drivers.modbus.coordinator import BusLock, ModbusCoordinator
from drivers.modbus.discovery import discover_tcp
from drivers.modbus.tcp import TcpBackend
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth
from firmware_profiles.schema import Profile
from simulators.modbus.carel_ir33 import CarelIr33Slave
from simulators.modbus.dixell_slave import DixellSlave
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.responders import TcpResponder
from simulators.modbus.slave import MapSlave, SlaveException, Table
from tests.peers.modbus import LIBRARY, rtu_backend, rtu_line

PROFILES = sorted((p for p in LIBRARY if p.modbus is not None), key=lambda p: p.id)


def device_for(profile: Profile, clock: Clock) -> MapSlave:
    """The project's simulator of this model, or a plain map with just the profile's points."""
    pid = profile.id
    slave: MapSlave
    if pid in ("dixell-xr77u", "dixell-xr60cx"):
        variant = "xr77u" if pid.endswith("xr77u") else "xr60cx"
        slave = DixellSlave(FridgeModel(clock.time(), seed=1), clock, variant)
    elif pid == "carel-ir33":
        slave = CarelIr33Slave(FridgeModel(clock.time(), seed=2), clock)
    elif pid in ("eastron-sdm120", "eastron-sdm630"):
        slave = EnergyMeterSlave(clock, seed=3, model=pid.split("-")[1])  # type: ignore[arg-type]
    else:
        slave = MapSlave()
        for p in profile.modbus.points:  # type: ignore[union-attr]
            slave.define(p.table, p.address, p.width)  # type: ignore[arg-type]
    slave.refuse_reads_across_holes(profile.modbus.points)  # type: ignore[union-attr]
    return slave


def spans_holes(profile: Profile) -> bool:
    used = {
        (p.table, a) for p in profile.modbus.points for a in range(p.address, p.address + p.width)
    }  # type: ignore[union-attr]
    return any(
        (b.table, a) not in used
        for b in plan_reads(profile.modbus)  # type: ignore[arg-type]
        for a in range(b.start, b.start + b.count)
    )


def make(profile: Profile, backend, clock: Clock, plan_path: str, **kw) -> ModbusCoordinator:  # type: ignore[no-untyped-def]
    where = {"bus": "line"} if kw.get("line_lock") else {"host": "127.0.0.1", "port": 1502}
    dev = DeviceConfig(id="dev", profile=profile.id, unit_id=1, **where)  # type: ignore[arg-type]
    return ModbusCoordinator(
        dev,
        profile,
        backend,
        Bus(),
        clock,
        DeviceHealth("dev", "modbus"),
        plan_path=plan_path,
        **kw,
    )


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.id)
async def test_every_profile_is_read_whole_from_a_strict_device_and_remembers(
    profile, clock, tmp_path
):
    slave = device_for(profile, clock)
    peer = TcpResponder({1: slave})
    await peer.start()
    plan = str(tmp_path / "modbus-plans" / "dev.json")
    backend = TcpBackend("127.0.0.1", peer.port, 0.5)
    try:
        await backend.connect()
        coord = make(profile, backend, clock, plan)
        got = {r.point for r in await coord.poll_once()}
        assert got == {p.name for p in profile.modbus.points}
        refused = slave.refused_spans
        assert (refused > 0) == spans_holes(profile)
        assert coord.unreadable == set()
        # the next poll, and a coordinator after a restart, read the learnt plan directly
        assert {r.point for r in await coord.poll_once()} == got
        again = make(profile, backend, clock, plan)
        assert again.blocks == coord.blocks
        assert {r.point for r in await again.poll_once()} == got
        assert slave.refused_spans == refused
    finally:
        backend.close()
        await peer.stop()


async def test_xr77u_on_an_rs485_line_splits_its_coil_block(clock, tmp_path):
    xr = LIBRARY.get("dixell-xr77u")
    assert xr is not None and spans_holes(xr)
    slave = device_for(xr, clock)
    async with rtu_line({1: slave}) as line:
        backend = rtu_backend(line.port)
        await backend.connect()
        try:
            coord = make(xr, backend, clock, str(tmp_path / "p.json"), line_lock=BusLock(0.002))
            readings = await coord.poll_once()
        finally:
            backend.close()
    assert {r.point for r in readings} == {p.name for p in xr.modbus.points}  # type: ignore[union-attr]
    assert slave.refused_spans >= 1
    assert len(coord.blocks) > len(plan_reads(xr.modbus))  # type: ignore[arg-type]


class NoFanRelay(DixellSlave):
    """A firmware without the fan relay: coil 539 does not exist."""

    def read(self, table: Table, address: int, count: int) -> list[int]:
        if table == "coil" and address <= 539 < address + count:
            raise SlaveException(frames.EXC_ILLEGAL_ADDRESS)
        return super().read(table, address, count)


async def test_a_point_the_device_lacks_is_dropped_and_the_rest_published(clock, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    xr = LIBRARY.get("dixell-xr77u")
    assert xr is not None
    slave = NoFanRelay(FridgeModel(clock.time(), seed=1), clock)
    slave.refuse_reads_across_holes(xr.modbus.points)  # type: ignore[union-attr]
    peer = TcpResponder({1: slave})
    await peer.start()
    backend = TcpBackend("127.0.0.1", peer.port, 0.5)
    try:
        await backend.connect()
        coord = make(xr, backend, clock, str(tmp_path / "p.json"))
        got = {r.point for r in await coord.poll_once()}
        assert got == {p.name for p in xr.modbus.points} - {"fan_on"}  # type: ignore[union-attr]
        assert coord.unreadable == {"fan_on"}
        assert sum("refuses fan_on even read alone" in r.getMessage() for r in caplog.records) == 1
        restarted = make(xr, backend, clock, str(tmp_path / "p.json"))
        assert restarted.unreadable == {"fan_on"}
        before = slave.requests
        assert {r.point for r in await restarted.poll_once()} == got
        assert slave.requests - before == len(restarted.blocks)  # no probing of fan_on again
    finally:
        backend.close()
        await peer.stop()


class CoilsBroken(DixellSlave):
    """Holding registers answer; every coil read fails with a device failure (04)."""

    def read(self, table: Table, address: int, count: int) -> list[int]:
        if table == "coil":
            raise SlaveException(frames.EXC_DEVICE_FAILURE)
        return super().read(table, address, count)


async def test_blocks_read_before_a_failing_one_are_published(clock, tmp_path):
    xr = LIBRARY.get("dixell-xr77u")
    assert xr is not None
    peer = TcpResponder({1: CoilsBroken(FridgeModel(clock.time(), seed=1), clock)})
    await peer.start()
    backend = TcpBackend("127.0.0.1", peer.port, 0.5)
    try:
        await backend.connect()
        coord = make(xr, backend, clock, str(tmp_path / "p.json"))
        got = {r.point for r in await coord.poll_once()}
    finally:
        backend.close()
        await peer.stop()
    holding = {p.name for p in xr.modbus.points if p.table == "holding"}  # type: ignore[union-attr]
    assert got == holding
    assert coord.health.transient == 1 and "code 4" in (coord.health.last_error or "")


async def test_a_device_that_answers_nothing_still_fails_the_poll(clock, tmp_path):
    xr = LIBRARY.get("dixell-xr77u")
    assert xr is not None
    slave = device_for(xr, clock)
    slave.faults.silent = True
    peer = TcpResponder({1: slave})
    await peer.start()
    backend = TcpBackend("127.0.0.1", peer.port, 0.1)
    try:
        await backend.connect()
        coord = make(xr, backend, clock, str(tmp_path / "p.json"))
        asked = []
        read = backend.read

        async def counted(*args: object) -> list[int]:
            asked.append(args)
            return await read(*args)  # type: ignore[arg-type]

        backend.read = counted  # type: ignore[method-assign]
        with pytest.raises(DeviceIOError):
            await coord.poll_once()
        assert len(asked) == 1 < len(coord.blocks)  # one timeout, not one per block
    finally:
        backend.close()
        await peer.stop()


async def test_discovery_recognises_a_strict_controller(clock):
    xr = LIBRARY.get("dixell-xr77u")
    assert xr is not None
    peer = TcpResponder({1: device_for(xr, clock)})
    await peer.start()
    try:
        found = await discover_tcp("127.0.0.1", peer.port, [1], timeout_s=0.3)
    finally:
        await peer.stop()
    assert [d["profile"] for d in found] in (["dixell-xr77u"], ["dixell-xr60cx"])
