"""The Modbus part of the demo venue: two Dixell cabinets, a Carel ir33 and an SDM120 meter,
all on loopback Modbus TCP."""

from __future__ import annotations

from edge_agent.clock import Clock
from simulators.demo_part import DemoPart
from simulators.modbus.carel_ir33 import CarelIr33Slave
from simulators.modbus.dixell_server import start_fleet
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.responders import TcpResponder


def _device(dev_id: str, profile: str, label: str, port: int, unit: int = 1) -> str:
    return (
        f'\n[[devices]]\nid = "{dev_id}"\nprofile = "{profile}"\nlabel = "{label}"\n'
        f'host = "127.0.0.1"\nport = {port}\nunit_id = {unit}\n'
    )


async def demo_part(workdir: str, clock: Clock) -> DemoPart:
    fridges = await start_fleet(2, seed=11, clock=clock)
    gateway = TcpResponder(
        {
            1: CarelIr33Slave(FridgeModel(clock.time(), seed=21), clock),
            2: EnergyMeterSlave(clock, seed=31),
        }
    )
    await gateway.start()

    async def stop() -> None:
        await gateway.stop()
        for f in fridges:
            await f.stop()

    toml = (
        _device("bar-fridge-1", "dixell-xr77u", "Bar fridge 1", fridges[0].port)
        + _device("bar-fridge-2", "dixell-xr77u", "Bar fridge 2", fridges[1].port)
        + _device("kitchen-cabinet", "carel-ir33", "Kitchen cabinet", gateway.port, 1)
        + _device("kitchen-meter", "eastron-sdm120", "Kitchen energy meter", gateway.port, 2)
    )
    return DemoPart(toml, stop, "Modbus: 2 Dixell XR77U, 1 Carel ir33, 1 Eastron SDM120 (TCP)")
