"""Discovery: scan unit ids, fingerprint each responder against the Modbus profiles, propose
[[devices]] entries."""

from __future__ import annotations

from drivers.modbus.discovery import discover_rtu, discover_tcp
from edge_agent.config.loader import load_config
from simulators.modbus.dixell_server import FridgeSimulator
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.responders import TcpResponder
from tests.conftest import MINIMAL_VENUE
from tests.peers.modbus import line_config, mixed_slaves, rtu_line


async def test_rtu_bus_with_three_kinds_of_device(clock, write_config):
    async with rtu_line(mixed_slaves(clock)) as line:
        await clock.advance(600)
        found = await discover_rtu(line_config(line.port), range(1, 6), timeout_s=0.05)
    assert [(d["unit_id"], d["profile"]) for d in found] == [
        (1, "dixell-xr77u"),
        (2, "carel-ir33"),
        (3, "eastron-sdm120"),
    ]
    assert all(d["score"] >= 0.75 and d["bus"] == "line" for d in found)
    # The XR60CX map overlaps the XR77U's: it is a runner-up, not the answer.
    assert found[0]["candidates"][1]["profile"] == "dixell-xr60cx"
    # The proposals are valid venue config.
    buses = '[[buses]]\nid = "line"\nport = "/dev/ttyUSB0"\n'
    cfg = load_config(write_config(MINIMAL_VENUE + buses + "".join(d["toml"] for d in found)))
    assert [d.profile for d in cfg.devices] == ["dixell-xr77u", "carel-ir33", "eastron-sdm120"]


async def test_tcp_xr60cx_is_told_apart_from_xr77u(clock):
    sim = FridgeSimulator(FridgeModel(clock.time(), seed=5), clock, variant="xr60cx")
    await sim.start()
    try:
        (found,) = await discover_tcp("127.0.0.1", sim.port, [1])
    finally:
        await sim.stop()
    assert found["profile"] == "dixell-xr60cx"
    assert found["host"] == "127.0.0.1" and found["port"] == sim.port
    assert f"port = {sim.port}" in found["toml"]


async def test_tcp_gateway_meter_and_silent_units(clock):
    gw = TcpResponder({7: EnergyMeterSlave(clock, seed=1, model="sdm630")})
    await gw.start()
    try:
        found = await discover_tcp("127.0.0.1", gw.port, [6, 7], timeout_s=0.1)
    finally:
        await gw.stop()
    assert [(d["unit_id"], d["profile"]) for d in found] == [(7, "eastron-sdm630")]


async def test_demo_part_devices_are_discovered_as_configured(clock, tmp_path):
    from simulators.modbus.demo import demo_part

    part = await demo_part(str(tmp_path), clock)
    try:
        port = int(
            part.config_toml.split('id = "kitchen-cabinet"')[1].split("port = ")[1].split()[0]
        )
        found = await discover_tcp("127.0.0.1", port, [1, 2], timeout_s=0.1)
    finally:
        await part.stop()
    assert [d["profile"] for d in found] == ["carel-ir33", "eastron-sdm120"]
