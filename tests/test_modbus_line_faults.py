"""Line and gateway faults against the project's Modbus peers (TCP on loopback, RTU on a pty):
stale transaction ids, intermittent CRC errors, write replies lost after the write was applied,
and gateways answering 0A/0B for absent units."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError
from drivers.modbus.coordinator import BusLock
from drivers.modbus.discovery import discover_tcp
from drivers.modbus.tcp import TcpBackend, mbap_frame, parse_mbap_header
from drivers.polling import FAILURES_BEFORE_OUTAGE
from edge_agent.messages import Command
from simulators.modbus.dixell_slave import DixellSlave
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.responders import TcpResponder
from tests.helpers import until
from tests.peers.modbus import coordinator, rtu_backend, rtu_line


def _xr(clock) -> DixellSlave:  # type: ignore[no-untyped-def]
    return DixellSlave(FridgeModel(clock.time(), seed=1), clock)


async def test_stale_transaction_ids_are_discarded_retried_and_counted(clock):
    slave = _xr(clock)
    slave.faults.wrong_tid_every = 3
    peer = TcpResponder({1: slave})
    await peer.start()
    backend = TcpBackend("127.0.0.1", peer.port, 0.5)
    coord = coordinator("xr", "dixell-xr77u", backend, clock)
    task = asyncio.create_task(coord.run())
    try:
        for _ in range(20):
            polls = coord.health.polls
            await until(lambda p=polls: coord.health.polls > p, what="a poll")
            await clock.advance(5)
        assert coord.health.errors == 0 and coord.health.connected
        assert backend.stale_replies >= 20 * len(coord.blocks) // 3 - 1
        assert 0 < coord.health.stale_replies <= backend.stale_replies
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        backend.close()
        await peer.stop()


async def test_a_late_reply_to_a_timed_out_request_is_not_taken_for_the_next(clock):
    slave = EnergyMeterSlave(clock, seed=1)
    peer = TcpResponder({1: slave})
    await peer.start()
    backend = TcpBackend("127.0.0.1", peer.port, 0.05)
    try:
        await backend.connect()
        slave.faults.delay_s = 0.1  # answers after the master gave up
        with pytest.raises(Exception, match="no answer"):
            await backend.read("input", 0, 2, 1)
        slave.faults.delay_s = 0.0
        await asyncio.sleep(0.12)  # the late reply is now waiting on the socket
        assert await backend.read("input", 70, 2, 1) == slave.read("input", 70, 2)
        assert backend.stale_replies == 1 and backend.connected
    finally:
        backend.close()
        await peer.stop()


async def test_intermittent_crc_errors_are_metrics_not_outages(clock, caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    slave = _xr(clock)
    slave.faults.garbage_every = 5  # every fifth frame on the line is noise
    async with rtu_line({1: slave}) as line:
        backend = rtu_backend(line.port, timeout_s=0.05)
        coord = coordinator("xr", "dixell-xr77u", backend, clock, lock=BusLock(0.002))
        task = asyncio.create_task(coord.run())
        try:
            for _ in range(25):
                seen = coord.health.polls + coord.health.errors
                await until(lambda s=seen: coord.health.polls + coord.health.errors > s)
                await clock.advance(5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            backend.close()
    h = coord.health
    assert h.transient >= 3 and h.connected and h.outage_since is None
    assert not [r for r in caplog.records if "offline" in r.getMessage()]


async def test_a_run_of_crc_errors_is_one_outage(clock, caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    slave = _xr(clock)
    async with rtu_line({1: slave}) as line:
        backend = rtu_backend(line.port, timeout_s=0.05)
        coord = coordinator("xr", "dixell-xr77u", backend, clock, lock=BusLock(0.002))
        task = asyncio.create_task(coord.run())
        try:
            await until(lambda: coord.health.polls == 1, what="first poll")
            slave.faults.garbage = True
            for _ in range(FAILURES_BEFORE_OUTAGE + 3):
                errors = coord.health.errors
                await clock.advance(65)
                await until(lambda e=errors: coord.health.errors > e, what="a failed poll")
            slave.faults.garbage = False
            await clock.advance(65)
            await until(lambda: coord.health.connected, what="recovery")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            backend.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("offline" in m for m in messages) == 1
    assert sum("back online" in m for m in messages) == 1
    assert coord.health.transient == FAILURES_BEFORE_OUTAGE - 1


def _set(value: float) -> Command:
    return Command("c1", "xr", "set_setpoint", {"value": value}, "test", 0.0, 2e9)


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
async def test_a_write_whose_reply_is_corrupted_is_settled_by_reading_back(
    clock, transport, caplog
):
    caplog.set_level(logging.INFO)
    slave = _xr(clock)
    slave.faults.garble_write_replies = True
    if transport == "tcp":
        peer = TcpResponder({1: slave})
        await peer.start()
        backend: object = TcpBackend("127.0.0.1", peer.port, 0.3)
        coord = coordinator("xr", "dixell-xr77u", backend, clock)  # type: ignore[arg-type]
        try:
            result = await coord.execute(_set(4.5))
        finally:
            backend.close()  # type: ignore[attr-defined]
            await peer.stop()
    else:
        async with rtu_line({1: slave}) as line:
            backend = rtu_backend(line.port, timeout_s=0.1)
            coord = coordinator("xr", "dixell-xr77u", backend, clock, lock=BusLock(0.002))
            try:
                result = await coord.execute(_set(4.5))
            finally:
                backend.close()  # type: ignore[attr-defined]
    assert result.ok and result.value == 4.5, result
    assert slave.model.setpoint == 4.5 and slave.writes == 1  # applied once, never resent
    assert any("read-back shows it applied" in r.getMessage() for r in caplog.records)


async def test_a_write_the_device_did_not_apply_is_reported_failed(clock):
    slave = _xr(clock)
    slave.faults.garble_write_replies = True
    original = slave.on_write
    slave.on_write = lambda *a: None  # type: ignore[method-assign]  # the write is lost on the line
    peer = TcpResponder({1: slave})
    await peer.start()
    backend = TcpBackend("127.0.0.1", peer.port, 0.3)
    coord = coordinator("xr", "dixell-xr77u", backend, clock)
    try:
        result = await coord.execute(_set(4.5))
    finally:
        slave.on_write = original  # type: ignore[method-assign]
        backend.close()
        await peer.stop()
    assert not result.ok and "not applied" in (result.error or "") and result.value == 3.0


@pytest.mark.parametrize("code", [0x0A, 0x0B])
async def test_gateway_exceptions_for_absent_units_are_not_devices(clock, code):
    gw = TcpResponder({7: EnergyMeterSlave(clock, seed=1, model="sdm630")}, absent_exception=code)
    await gw.start()
    try:
        found = await discover_tcp("127.0.0.1", gw.port, range(1, 9), timeout_s=0.1)
    finally:
        await gw.stop()
    assert [(d["unit_id"], d["profile"]) for d in found] == [(7, "eastron-sdm630")]


@given(st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(min_size=1, max_size=253))
def test_mbap_frames_round_trip(tid, unit, pdu):
    frame = mbap_frame(tid, unit, pdu)
    assert parse_mbap_header(frame[:7]) == (tid, len(pdu), unit)


@given(st.binary(min_size=7, max_size=7))
def test_any_header_is_parsed_or_refused(header):
    try:
        tid, length, _unit = parse_mbap_header(header)
    except CodecError:
        return
    assert 1 <= length <= 253 and 0 <= tid <= 0xFFFF
