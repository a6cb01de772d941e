"""Modbus RTU on a real pty line: several slaves share one serial port and one BusLock; a dead,
noisy or refusing slave costs only itself, and the inter-frame gap is honoured."""

from __future__ import annotations

import asyncio

import pytest

from drivers.errors import DeviceIOError, DeviceRejected
from drivers.modbus.coordinator import BusLock
from simulators.modbus.dixell_slave import DixellSlave
from simulators.modbus.fridge_model import FridgeModel
from tests.helpers import until
from tests.peers.modbus import coordinator, line_config, mixed_slaves, rtu_backend, rtu_line


async def test_three_profiles_share_one_line(clock):
    slaves = mixed_slaves(clock)
    async with rtu_line(slaves) as line:
        backend = rtu_backend(line.port)
        lock = BusLock(line_config(line.port).gap_s, clock)
        await backend.connect()
        try:
            xr = coordinator("xr", "dixell-xr77u", backend, clock, unit_id=1, lock=lock)
            carel = coordinator("carel", "carel-ir33", backend, clock, unit_id=2, lock=lock)
            meter = coordinator("meter", "eastron-sdm120", backend, clock, unit_id=3, lock=lock)
            await clock.advance(3600)
            got = {
                c.device.id: {r.point: r.value for r in await c.poll_once()}
                for c in (xr, carel, meter)
            }
        finally:
            backend.close()
    fridge1 = slaves[1].model.state  # type: ignore[attr-defined]
    assert got["xr"]["room_temp"] == round(fridge1.room, 1)
    assert got["xr"]["setpoint"] == 3.0 and len(got["xr"]) == 8
    fridge2 = slaves[2].model.state  # type: ignore[attr-defined]
    assert got["carel"]["room_temp"] == round(fridge2.room, 1)
    assert got["carel"]["evaporator_temp"] == round(fridge2.evaporator, 1)
    assert got["carel"]["defrost_active"] is fridge2.defrost_active
    assert got["carel"]["running"] is True and got["carel"]["setpoint"] == 3.0
    m = got["meter"]
    assert 225 <= m["voltage"] <= 235 and 49.9 <= m["frequency"] <= 50.1
    assert m["active_power"] == pytest.approx(slaves[3].power_at(clock.time()), rel=1e-6)  # type: ignore[attr-defined]
    assert m["total_energy"] > 1000
    assert lock.transactions == 3 + 3 + 3


async def test_noisy_and_refusing_slaves_cost_only_themselves(clock):
    slaves = mixed_slaves(clock)
    slaves[2].faults.garbage = True
    slaves[3].faults.exception = 4
    async with rtu_line(slaves) as line:
        backend = rtu_backend(line.port)
        await backend.connect()
        lock = BusLock(0.002)
        try:
            carel = coordinator("carel", "carel-ir33", backend, clock, unit_id=2, lock=lock)
            meter = coordinator("meter", "eastron-sdm120", backend, clock, unit_id=3, lock=lock)
            xr = coordinator("xr", "dixell-xr77u", backend, clock, unit_id=1, lock=lock)
            with pytest.raises(DeviceIOError):
                await carel.poll_once()  # CRC-broken reply: no valid answer, a timeout
            with pytest.raises(DeviceRejected, match="code 4"):
                await meter.poll_once()
            assert backend.connected
            assert len(await xr.poll_once()) == 8
        finally:
            backend.close()


async def test_slow_reply_inside_timeout_is_fine_beyond_it_is_a_timeout(clock):
    slaves = mixed_slaves(clock)
    async with rtu_line(slaves) as line:
        backend = rtu_backend(line.port, timeout_s=0.15)
        await backend.connect()
        try:
            xr = coordinator("xr", "dixell-xr77u", backend, clock, lock=BusLock(0.002))
            slaves[1].faults.delay_s = 0.03
            assert len(await xr.poll_once()) == 8
            slaves[1].faults.delay_s = 0.3
            with pytest.raises(DeviceIOError):
                await xr.poll_once()
        finally:
            backend.close()


async def test_one_dead_slave_on_a_bus_of_ten_does_not_slow_the_others(clock):
    """Ten XR77Us on one line, unit 5 silent. Over one simulated minute at 5 s polls the nine
    live ones keep 12 polls a minute; the dead one backs off and takes far fewer attempts."""
    slaves = {u: DixellSlave(FridgeModel(clock.time(), seed=u), clock) for u in range(1, 11)}
    slaves[5].faults.silent = True
    async with rtu_line(slaves) as line:
        backend = rtu_backend(line.port, timeout_s=0.05)
        lock = BusLock(line_config(line.port).gap_s, clock)
        coords = {
            u: coordinator(f"xr-{u}", "dixell-xr77u", backend, clock, unit_id=u, lock=lock)
            for u in slaves
        }
        tasks = [asyncio.create_task(c.run()) for c in coords.values()]
        live = [c.health for u, c in coords.items() if u != 5]
        dead = coords[5].health
        try:
            await until(lambda: all(h.polls == 1 for h in live) and dead.errors == 1, what="t0")
            for tick in range(1, 13):
                await clock.advance(5)
                await until(
                    lambda t=tick: all(h.polls == 1 + t for h in live),
                    what=f"live slaves polled at tick {tick}",
                )
            assert all(h.polls == 13 and h.errors == 0 for h in live)
            assert dead.polls == 0 and 2 <= dead.errors <= 8  # backoff: ≤ 8 tries vs 13 polls
            assert backend.connected  # the timeouts never closed the shared port
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            backend.close()


async def test_inter_frame_gap_is_honoured_between_every_frame(clock):
    slaves = mixed_slaves(clock)
    async with rtu_line(slaves) as line:
        cfg = line_config(line.port, baudrate=9600)
        backend = rtu_backend(line.port)
        await backend.connect()
        lock = BusLock(cfg.gap_s, clock)
        line.responder.line.enabled = True
        try:
            xr = coordinator("xr", "dixell-xr77u", backend, clock, unit_id=1, lock=lock)
            carel = coordinator("carel", "carel-ir33", backend, clock, unit_id=2, lock=lock)
            for _ in range(10):
                await asyncio.gather(xr.poll_once(), carel.poll_once())
        finally:
            backend.close()
    gaps = line.responder.line.gaps()
    assert len(gaps) == 59  # 60 requests, each after the previous reply
    assert cfg.gap_s == pytest.approx(3.5 * 10 / 9600)
    assert min(gaps) >= cfg.gap_s
