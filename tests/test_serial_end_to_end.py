"""The serial driver against a fake MT-SICS scale on a real socat pty pair: readings into the
bus, tare and zero, overload, scale errors, a keg's litres, a dead scale, an unplugged adapter.
Time is a ManualClock: polls and timeouts happen when the test moves time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.serial.discovery import probe
from edge_agent.messages import Command, Quality
from tests.helpers import until
from tests.peers.serial import Driver, bench, keg, scale_config, start_driver

__all__ = ["bench", "keg"]  # fixtures


def cmd(name: str, clock, **args) -> Command:
    now = clock.time()
    return Command(f"c-{name}-{now}", "scale", name, args, "test", now, now + 60)


async def advance_until(driver: Driver, cond, what: str, steps: int = 60) -> None:
    """Move time a second at a time until cond holds (bounded)."""
    for _ in range(steps):
        if cond():
            return
        await driver.step(1)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
async def driver(write_config, clock, bench):
    d = await start_driver(write_config, clock, scale_config(bench.pair.host_path))
    try:
        yield d
    finally:
        await d.stop()


async def test_settling_weight_is_uncertain_then_stable(driver, bench, clock):
    first = driver.readings("weight")
    assert [r.value for r in first] == [0.0] and first[0].quality is Quality.GOOD
    bench.scale.model.place(1.234, clock.time())
    await driver.poll()  # 1 s after: still ringing
    w, s = driver.readings("weight")[-1], driver.readings("stable")[-1]
    assert w.quality is Quality.UNCERTAIN and s.value is False and w.unit == "kg"
    await driver.poll()  # 2 s after: settled
    w, s = driver.readings("weight")[-1], driver.readings("stable")[-1]
    assert (w.value, w.quality, s.value) == (1.234, Quality.GOOD, True)
    assert bench.scale.log.count("SI") == driver.health.polls
    assert driver.health.connected and driver.health.errors == 0


async def test_tare_waits_for_stable_then_zero_and_refusals(driver, bench, clock):
    commander = driver.ctx.commanders["scale"]
    model = bench.scale.model
    model.place(0.5, clock.time())  # a bowl, still settling
    pending = asyncio.create_task(commander.execute(cmd("tare", clock)))
    await asyncio.sleep(0.05)
    assert not pending.done()  # T waits for a stable weight
    await driver.step(2)
    result = await asyncio.wait_for(pending, 5)
    assert result.ok and result.value == 0.5
    await driver.poll()
    assert driver.readings("weight")[-1].value == 0.0  # net of the bowl

    model.place(-0.5, clock.time())
    await driver.step(2)
    result = await commander.execute(cmd("zero", clock))
    assert result.ok, result.error
    await driver.poll()
    assert driver.readings("weight")[-1].value == 0.0 and model.tare_kg == 0.0

    model.place(1.0, clock.time())  # far outside the +-2 % zero range
    await driver.step(2)
    result = await commander.execute(cmd("zero", clock))
    assert not result.ok and "above" in result.error
    assert not (await commander.execute(cmd("launch", clock))).ok
    assert not (await commander.execute(cmd("tare", clock, value=3))).ok
    assert bench.scale.log.count("T") == 1 and bench.scale.log.count("Z") == 2


async def test_a_scale_reporting_grams_keeps_its_resolution(driver, bench, clock):
    bench.scale.unit, bench.scale.decimals = "g", 2
    bench.scale.model.resolution_kg = 0.00001  # a 0.01 g readability bench scale
    bench.scale.model.ramp_to(0.0123, clock.time(), 0.0)
    await driver.step(2)
    await driver.poll()
    w = driver.readings("weight")[-1]
    assert (w.value, w.unit) == (0.0123, "kg")  # 12.30 g, not 0.012 kg


async def test_overload_and_underload_are_state_not_outage(driver, bench, clock):
    model = bench.scale.model
    model.place(7.5, clock.time())  # capacity 6 kg
    await driver.step(2)
    await driver.poll()
    assert driver.readings("overload")[-1].value is True
    weights = len(driver.readings("weight"))
    await driver.poll()
    assert len(driver.readings("weight")) == weights  # no weight while out of range
    model.ramp_to(-0.5, clock.time(), 0.0)  # pan lifted: below the zero range
    await driver.step(2)
    await driver.poll()
    assert driver.readings("underload")[-1].value is True
    assert driver.readings("overload")[-1].value is False
    model.ramp_to(0.2, clock.time(), 0.0)
    await driver.step(2)
    await driver.poll()
    assert driver.readings("weight")[-1].value == 0.2
    kinds = [e.kind for e in driver.events()]
    assert kinds == ["scale.overload", "scale.underload", "scale.normal"]
    assert driver.health.connected and driver.health.errors == 0


@pytest.mark.parametrize("error", ["ES", "ET", "EL"])
async def test_scale_errors_are_counted_and_polling_goes_on(driver, bench, error, caplog):
    caplog.set_level(logging.WARNING)
    bench.scale.next_error = error
    await driver.poll()
    assert driver.health.errors == 1 and driver.health.connected
    kind = {"ES": "syntax", "ET": "transmission", "EL": "logic"}[error]
    assert kind in driver.health.last_error
    polls = len(driver.readings("weight"))
    await driver.poll()
    assert len(driver.readings("weight")) == polls + 1
    assert sum("error" in r.getMessage() for r in caplog.records) == 1


async def test_garbage_is_counted_never_crashes(driver, bench):
    bench.scale.fault = "garbage"
    for _ in range(3):
        await driver.poll()
    assert driver.health.malformed == 3 and all(not t.done() for t in driver.tasks)
    bench.scale.fault = "none"
    n = len(driver.readings("weight"))
    await driver.poll()
    assert len(driver.readings("weight")) == n + 1


async def test_dead_scale_offline_once_and_back_once(driver, bench, clock, caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    bench.scale.fault = "silent"
    await advance_until(driver, lambda: driver.health.errors >= 4, "repeated timeouts")
    assert not driver.health.connected
    assert "no reply" in driver.health.last_error
    polls = driver.health.polls
    bench.scale.fault = "none"
    await advance_until(driver, lambda: driver.health.polls > polls, "recovery")
    assert driver.health.connected
    messages = [r.getMessage() for r in caplog.records]
    assert sum("offline" in m for m in messages) == 1
    assert sum("back online" in m for m in messages) == 1


async def test_slow_reply_times_out_and_late_answer_is_not_misread(driver, bench, clock):
    bench.scale.fault = "slow"  # answers 2 s late; the driver waits 1 s
    await advance_until(driver, lambda: driver.health.errors >= 1, "timeout")
    bench.scale.fault = "none"
    bench.scale.model.place(0.3, clock.time())
    await driver.step(3)
    polls = driver.health.polls
    await advance_until(driver, lambda: driver.health.polls > polls + 1, "recovery")
    assert driver.readings("weight")[-1].value == 0.3


async def test_unplugged_adapter_is_reopened_when_it_comes_back(driver, bench, clock, caplog):
    caplog.set_level(logging.INFO, logger="edge_agent")
    await bench.unplug()  # socat gone: both pty paths vanish, like a USB adapter's node
    await advance_until(driver, lambda: driver.health.errors >= 3, "failed reopens")
    assert not driver.health.connected
    assert "cannot open" in driver.health.last_error
    await bench.replug()
    bench.scale.model.place(2.0, clock.time())
    await driver.step(2)
    polls = driver.health.polls
    await advance_until(driver, lambda: driver.health.polls > polls, "reconnect")
    await driver.poll()
    assert driver.readings("weight")[-1].value == 2.0 and driver.health.connected
    messages = [r.getMessage() for r in caplog.records]
    assert sum("offline" in m for m in messages) == 1
    assert sum("back online" in m for m in messages) == 1


async def test_keg_litres_and_pours(write_config, clock, keg):
    d = await start_driver(
        write_config, clock, scale_config(keg.pair.host_path, "keg-scale-mtsics")
    )
    try:
        assert d.readings("litres_remaining")[-1].value == 40.0  # (53.4 - 13.0) / 1.01
        assert d.readings("weight")[-1].value == 53.4
        keg.scale.model.pour(0.568, clock.time(), duration_s=4.0)  # a pint
        await d.poll()
        await d.poll()
        litres = d.readings("litres_remaining")[-1]
        assert isinstance(litres.value, float) and litres.quality is Quality.UNCERTAIN
        assert 39.4 < litres.value < 40.0
        assert d.readings("pouring")[-1].value is True
        for _ in range(6):
            await d.poll()
        litres = d.readings("litres_remaining")[-1]
        assert litres.quality is Quality.GOOD and litres.value == pytest.approx(39.43, abs=0.01)
        assert d.readings("pouring")[-1].value is False
    finally:
        await d.stop()


async def test_probe_recognises_the_scale_and_proposes_config(bench):
    found = await probe(bench.pair.host_path)
    assert found is not None
    assert found["bus"] == {
        "id": "scale-host-line",
        "type": "rs232",
        "port": bench.pair.host_path,
        "baudrate": 9600,
    }
    assert found["device"]["profile"] == "mettler-toledo-mtsics"
    assert found["capacity"] == 6.0 and found["unit"] == "kg"
    assert bench.scale.log[:1] == ["I2"]


async def test_probe_finds_nothing_on_a_silent_line(bench):
    bench.scale.fault = "silent"
    assert await probe(bench.pair.host_path, timeout_s=0.05) is None
    assert bench.scale.log.count("I2") == 4  # every baud rate tried


async def test_demo_part_runs_a_bench_and_a_keg_scale(tmp_path, write_config, clock):
    from drivers.base import DriverContext
    from drivers.registry import build_services
    from edge_agent.bus import Bus
    from edge_agent.config.loader import load_config
    from edge_agent.health import HealthRegistry
    from firmware_profiles.loader import load_library
    from simulators.serial import demo_part
    from tests.conftest import MINIMAL_VENUE

    part = await demo_part(str(tmp_path), clock)
    tasks: list[asyncio.Future[None]] = []
    try:
        cfg = load_config(write_config(MINIMAL_VENUE + part.config_toml))
        lib = load_library()
        ctx = DriverContext(cfg, Bus(), clock, HealthRegistry())
        services = build_services(ctx, [(d, lib.profiles[d.profile]) for d in cfg.devices])
        tasks = [asyncio.ensure_future(s.run()) for s in services]
        await until(
            lambda: all((h.polls >= 1) for h in ctx.health.all()) and len(ctx.health.all()) == 2,
            what="both demo scales answer",
        )
        assert set(ctx.commanders) == {"bench-scale", "keg-lager-1"}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in ctx.shared.get("serial", {}).values():
            link.reset()
        await part.stop()
