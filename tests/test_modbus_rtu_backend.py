"""The RTU master's own framing and port handling: reply framing and parsing as pure functions
(property-tested), and the backend against a scripted slave on a real socat pty pair, byte by
byte: wrong unit, stale bytes from a late reply, short replies, write frames, a vanished port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
import tty
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError, DeviceIOError, DeviceRejected
from drivers.modbus import frames
from drivers.modbus.rtu import RtuBackend
from simulators.pty_pair import PtyPair


@given(st.binary(max_size=300), st.sampled_from([1, 2, 3, 4, 5, 6, 15, 16]))
def test_reply_length_never_crashes_on_garbage(data, fc):
    try:
        n = frames.rtu_reply_length(data, fc)
    except CodecError:
        return
    assert n is None or 5 <= n <= 260


@given(st.binary(max_size=300), st.sampled_from([1, 2, 3, 4]), st.integers(0, 2000))
def test_read_reply_values_never_crash_on_garbage(pdu, fc, count):
    try:
        values = frames.read_reply_values(fc, pdu, count)
    except CodecError:
        return
    assert len(values) <= count


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
def test_register_reply_round_trips(words):
    pdu = frames.read_response(3, words)
    assert frames.rtu_reply_length(frames.rtu_frame(1, pdu), 3) == len(pdu) + 3
    assert frames.read_reply_values(3, pdu, len(words)) == words


@given(st.lists(st.booleans(), min_size=1, max_size=2000))
def test_bit_reply_round_trips(bits):
    pdu = frames.read_response(1, bits)
    assert frames.read_reply_values(1, pdu, len(bits)) == bits


class ScriptedSlave:
    """The far end of the pty, driven by the test: receive exact frames, send any bytes."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    async def recv(self, n: int, limit_s: float = 2.0) -> bytes:
        buf = b""
        deadline = time.monotonic() + limit_s
        while len(buf) < n:
            with contextlib.suppress(BlockingIOError):
                buf += os.read(self.fd, n - len(buf))
            if len(buf) < n:
                assert time.monotonic() < deadline, f"slave got {buf!r}, wanted {n} bytes"
                await asyncio.sleep(0.001)
        return buf

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        os.close(self.fd)


@contextlib.asynccontextmanager
async def scripted_line(
    timeout_s: float = 0.2, directory: str | None = None
) -> AsyncIterator[tuple[RtuBackend, ScriptedSlave, PtyPair]]:
    pair = PtyPair(directory)
    await pair.start()
    slave = ScriptedSlave(pair.device_path)
    backend = RtuBackend(pair.host_path, 19200, "N", 1, 8, timeout_s)
    await backend.connect()
    try:
        yield backend, slave, pair
    finally:
        backend.close()
        slave.close()
        await pair.stop()


def reply(unit: int, pdu: bytes) -> bytes:
    return frames.rtu_frame(unit, pdu)


async def test_read_sends_the_exact_frame_and_parses_the_reply():
    async with scripted_line() as (backend, slave, _):
        task = asyncio.create_task(backend.read("holding", 256, 3, 7))
        assert await slave.recv(8) == frames.rtu_frame(7, frames.read_request_pdu(3, 256, 3))
        slave.send(reply(7, frames.read_response(3, [1, 0xFFFE, 300])))
        assert await task == [1, 0xFFFE, 300]
        assert backend.reply_at > backend.request_at > 0


async def test_a_reply_split_across_reads_is_reassembled():
    async with scripted_line() as (backend, slave, _):
        task = asyncio.create_task(backend.read("coil", 0, 10, 1))
        await slave.recv(8)
        frame = reply(1, frames.read_response(1, [True, False] * 5))
        slave.send(frame[:3])
        await asyncio.sleep(0.01)
        assert not task.done()
        slave.send(frame[3:])
        assert await task == [True, False] * 5


async def test_short_reply_is_returned_short_for_the_decoder_to_count():
    async with scripted_line() as (backend, slave, _):
        task = asyncio.create_task(backend.read("input", 0, 4, 1))
        await slave.recv(8)
        slave.send(reply(1, frames.read_response(4, [5, 6])))
        assert await task == [5, 6]


async def test_exception_reply_is_a_rejection():
    async with scripted_line() as (backend, slave, _):
        task = asyncio.create_task(backend.read("holding", 9999, 1, 1))
        await slave.recv(8)
        slave.send(reply(1, frames.exception_response(3, 2)))
        with pytest.raises(DeviceRejected, match="code 2"):
            await task


async def test_wrong_unit_bad_crc_and_foreign_function_are_no_answer():
    async with scripted_line() as (backend, slave, _):
        for bad in (
            reply(2, frames.read_response(3, [1])),  # another unit
            reply(1, frames.read_response(3, [1]))[:-1] + b"\x00",  # CRC broken
            reply(1, frames.read_response(4, [1])),  # answers FC04 to an FC03
        ):
            task = asyncio.create_task(backend.read("holding", 0, 1, 1))
            await slave.recv(8)
            slave.send(bad)
            with pytest.raises(DeviceIOError, match=r"unit|CRC|function"):
                await task
        assert backend.connected


async def test_silence_is_a_timeout_and_a_late_reply_is_not_taken_for_the_next():
    async with scripted_line(timeout_s=0.05) as (backend, slave, _):
        with pytest.raises(DeviceIOError, match="no answer"):
            await backend.read("holding", 0, 1, 1)
        await slave.recv(8)
        slave.send(reply(1, frames.read_response(3, [111])))  # too late: nobody waits
        await asyncio.sleep(0.02)
        task = asyncio.create_task(backend.read("holding", 0, 1, 1))
        await slave.recv(8)
        slave.send(reply(1, frames.read_response(3, [222])))
        assert await task == [222]


async def test_write_frames_on_the_wire():
    async with scripted_line() as (backend, slave, _):
        cases = [
            (backend.write_registers(10, [0x1234], 3), struct.pack(">BHH", 6, 10, 0x1234)),
            (
                backend.write_registers(20, [1, 2], 3),
                struct.pack(">BHHBHH", 16, 20, 2, 4, 1, 2),
            ),
            (backend.write_coil(5, True, 3), struct.pack(">BHH", 5, 5, 0xFF00)),
        ]
        for call, pdu in cases:
            task = asyncio.create_task(call)
            request = await slave.recv(len(pdu) + 3)
            assert request == frames.rtu_frame(3, pdu)
            slave.send(reply(3, pdu if pdu[0] != 16 else pdu[:5]))
            await task


async def test_vanished_port_fails_the_read_and_reconnects_when_it_returns(tmp_path):
    async with scripted_line(0.5, str(tmp_path)) as (backend, slave, pair):
        task = asyncio.create_task(backend.read("holding", 0, 1, 1))
        await slave.recv(8)
        slave.close()
        slave.fd = os.open(os.devnull, os.O_RDONLY)  # so the fixture's close() has a target
        await pair.stop()  # socat gone: the master's pty hangs up
        with pytest.raises(DeviceIOError):
            await task
        assert not backend.connected
        with pytest.raises(DeviceIOError, match="connect failed"):
            await backend.connect()
        for link in (pair.host_path, pair.device_path):  # as if the adapter were plugged in again
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
        restarted = PtyPair(pair.dir)
        await restarted.start()
        try:
            await backend.connect()
            assert backend.connected
            again = ScriptedSlave(restarted.device_path)
            task = asyncio.create_task(backend.read("holding", 0, 1, 1))
            await again.recv(8)
            again.send(reply(1, frames.read_response(3, [42])))
            assert await task == [42]
            again.close()
        finally:
            backend.close()
            await restarted.stop()


async def test_agent_reads_two_controllers_on_one_rtu_bus(write_config, clock):
    """Config → factory → one RtuBackend and BusLock shared by two devices → the store."""
    from beerflow_edge.agent import Agent
    from edge_agent.config.loader import load_config
    from edge_agent.store.reader import StoreReader
    from firmware_profiles.loader import load_library
    from tests.conftest import MINIMAL_VENUE
    from tests.helpers import until
    from tests.peers.modbus import mixed_slaves, rtu_line

    slaves = mixed_slaves(clock)
    async with rtu_line(slaves) as line:
        text = (
            MINIMAL_VENUE
            + f'\n[[buses]]\nid = "cellar"\nport = "{line.port}"\nbaudrate = 19200\n'
            + "timeout_s = 0.2\n"
            + '\n[[devices]]\nid = "xr"\nprofile = "dixell-xr77u"\nbus = "cellar"\nunit_id = 1\n'
            + '\n[[devices]]\nid = "carel"\nprofile = "carel-ir33"\nbus = "cellar"\nunit_id = 2\n'
        )
        cfg = load_config(write_config(text))
        agent = Agent(cfg, load_library(), clock=clock)
        task = asyncio.create_task(agent.run(install_signals=False))
        try:
            await until(lambda: agent.api_ready.is_set(), what="API up")
            xr, carel = agent.health.get("xr"), agent.health.get("carel")
            assert xr is not None and carel is not None
            await until(lambda: xr.polls >= 1 and carel.polls >= 1, what="first polls")
            await clock.advance(5)
            await until(lambda: xr.polls >= 2 and carel.polls >= 2, what="second polls")
            await agent.writer.flush()
            with StoreReader(cfg.storage.path) as r:
                latest = {x.point: x.value for x in r.latest("xr")}
                assert latest["room_temp"] == round(slaves[1].model.state.room, 1)  # type: ignore[attr-defined]
                assert {x.point for x in r.latest("carel")} >= {"room_temp", "setpoint"}
            assert xr.errors == 0 and carel.errors == 0
        finally:
            agent.stop()
            await asyncio.wait_for(task, 10)
