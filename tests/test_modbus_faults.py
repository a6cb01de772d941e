"""Faults at the edges: a TCP server that dies and comes back, and garbage at every parser."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import CodecError
from drivers.modbus import frames
from drivers.modbus.backend import PymodbusBackend
from edge_agent.clock import ManualClock
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.responders import RtuResponder
from simulators.modbus.slave import garbage_for
from tests.helpers import until
from tests.peers.modbus import coordinator


async def test_tcp_server_restart_reconnects_within_the_backoff_bound(fridge, clock):
    backend = PymodbusBackend.tcp("127.0.0.1", fridge.port, 0.2)
    coord = coordinator("xr", "dixell-xr77u", backend, clock)
    health = coord.health
    task = asyncio.create_task(coord.run())
    try:
        await until(lambda: health.polls == 1, what="first poll")
        await fridge.stop()
        for _ in range(30):  # five minutes of outage: the backoff reaches its cap
            await clock.advance(10)
            await asyncio.sleep(0.01)
        await until(lambda: health.errors >= 4, what="failed polls")
        errors_during_outage = health.errors
        assert errors_during_outage <= 30  # backed off, not one try per 5 s tick
        restarted = FridgeSimulator(fridge.model, clock, port=fridge.port)
        await restarted.start()
        try:
            restart_at = clock.time()
            while health.polls == 1 and clock.time() - restart_at <= 61:
                await clock.advance(1)
                await asyncio.sleep(0.01)
            await until(lambda: health.polls >= 2, limit_s=2, what="reconnect")
            assert clock.time() - restart_at <= 60  # cap: min(60 s, 12 poll intervals)
            assert health.connected and backend.connected
        finally:
            await restarted.stop()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        backend.close()


@given(st.binary(max_size=300))
def test_rtu_framing_never_crashes_on_garbage(data):
    try:
        unit, pdu = frames.split_rtu(data)
    except CodecError:
        return
    assert frames.rtu_frame(unit, pdu) == data


@given(st.binary(max_size=260))
def test_a_slave_answers_any_pdu_with_a_response_or_an_exception(pdu):
    slave = EnergyMeterSlave(ManualClock(), seed=1)
    reply = slave.handle(pdu)
    assert reply and (reply[0] == (pdu[0] if pdu else 0) or reply[0] & 0x80)


@settings(max_examples=50)
@given(st.lists(st.binary(min_size=1, max_size=40), max_size=10), st.integers(0, 2**16))
def test_responder_counts_line_noise_and_still_answers_after_it(chunks, seed):
    rsp = RtuResponder("/nonexistent", {1: EnergyMeterSlave(ManualClock(), seed=1)}, seed=seed)
    sent: list[bytes] = []
    rsp._send = sent.append  # type: ignore[method-assign]
    for c in chunks:
        rsp._buf += c
        rsp._drain()
    # After a silence (a new frame start) a valid request is answered.
    rsp._buf = b""
    sent.clear()
    rsp._buf = frames.rtu_frame(1, frames.read_request_pdu(4, 0, 2))
    rsp._drain()
    assert len(sent) == 1 and frames.split_rtu(sent[0])[0] == 1


def test_garbage_bursts_are_noise_with_the_unit_prefix():
    burst = garbage_for(random.Random(1), 3)
    assert burst[0] == 3 and 4 <= len(burst) <= 12
