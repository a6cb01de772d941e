"""Modbus peers for tests: RS-485 lines (socat pty pair + our own RTU responder, so a dead unit
really times out), and a coordinator wired to them with a fresh health record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from drivers.modbus.backend import ModbusBackend
from drivers.modbus.coordinator import BusLock, ModbusCoordinator
from drivers.modbus.rtu import RtuBackend
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config.model import BusConfig, DeviceConfig
from edge_agent.health import DeviceHealth
from firmware_profiles.loader import load_library
from simulators.modbus.carel_ir33 import CarelIr33Slave
from simulators.modbus.dixell_slave import DixellSlave
from simulators.modbus.energy_meter import EnergyMeterSlave
from simulators.modbus.fridge_model import FridgeModel
from simulators.modbus.responders import RtuBus
from simulators.modbus.slave import MapSlave

LIBRARY = load_library()


@asynccontextmanager
async def rtu_line(slaves: Mapping[int, MapSlave]) -> AsyncIterator[RtuBus]:
    line = RtuBus(slaves)
    await line.start()
    try:
        yield line
    finally:
        await line.stop()


def mixed_slaves(clock: Clock) -> dict[int, MapSlave]:
    """XR77U at 1, Carel ir33 at 2, SDM120 meter at 3."""
    return {
        1: DixellSlave(FridgeModel(clock.time(), seed=1), clock),
        2: CarelIr33Slave(FridgeModel(clock.time(), seed=2), clock),
        3: EnergyMeterSlave(clock, seed=3),
    }


def rtu_backend(port: str, timeout_s: float = 0.1, baudrate: int = 19200) -> RtuBackend:
    return RtuBackend(port, baudrate, "N", 1, 8, timeout_s)


def coordinator(
    dev_id: str,
    profile: str,
    backend: ModbusBackend,
    clock: Clock,
    *,
    unit_id: int = 1,
    lock: BusLock | None = None,
    bus: Bus | None = None,
    poll_interval_s: float = 5.0,
) -> ModbusCoordinator:
    prof = LIBRARY.get(profile)
    assert prof is not None
    where = {"bus": "line"} if lock is not None else {"host": "127.0.0.1", "port": 1502}
    dev = DeviceConfig(
        id=dev_id, profile=profile, unit_id=unit_id, poll_interval_s=poll_interval_s, **where
    )
    return ModbusCoordinator(
        dev, prof, backend, bus or Bus(), clock, DeviceHealth(dev_id, "modbus"), line_lock=lock
    )


def line_config(port: str, baudrate: int = 19200) -> BusConfig:
    return BusConfig(id="line", port=port, baudrate=baudrate, timeout_s=0.1)
