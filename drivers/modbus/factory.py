"""Modbus services: a coordinator per device; TCP devices get their own connection, RTU
devices on one RS-485 line share its serial port and its lock."""

from __future__ import annotations

import os
import random

from drivers.base import Devices, DriverContext
from drivers.modbus.backend import ModbusBackend
from drivers.modbus.coordinator import BusLock, ModbusCoordinator
from drivers.modbus.rtu import RtuBackend
from drivers.modbus.tcp import TcpBackend
from edge_agent.config.model import DeviceConfig
from edge_agent.supervisor import Service
from firmware_profiles.schema import Profile


def _backend_for(
    ctx: DriverContext, dev: DeviceConfig, profile: Profile
) -> tuple[ModbusBackend, BusLock | None]:
    assert profile.modbus is not None
    if dev.host is not None:
        return TcpBackend(dev.host, dev.port or 502, profile.modbus.timeout_s), None
    assert dev.bus is not None
    lines = ctx.shared.setdefault("modbus-rtu", {})
    if dev.bus not in lines:
        bus = ctx.config.bus(dev.bus)
        assert bus is not None  # the config loader guarantees it
        backend = RtuBackend(
            bus.port, bus.baudrate, bus.parity, bus.stopbits, bus.bytesize, bus.timeout_s
        )
        lines[dev.bus] = (backend, BusLock(bus.gap_s, ctx.clock))
    backend, lock = lines[dev.bus]
    return backend, lock


def plan_dir(ctx: DriverContext) -> str:
    """Where each device's learnt read plan is kept: beside the database."""
    return os.path.join(os.path.dirname(os.path.abspath(ctx.config.storage.path)), "modbus-plans")


def build(ctx: DriverContext, devices: Devices) -> list[Service]:
    services = []
    for dev, profile in devices:
        backend, lock = _backend_for(ctx, dev, profile)
        coord = ModbusCoordinator(
            dev,
            profile,
            backend,
            ctx.bus,
            ctx.clock,
            ctx.health.register(dev.id, "modbus"),
            line_lock=lock,
            rng=random.Random(dev.id),
            plan_path=os.path.join(plan_dir(ctx), f"{dev.id}.json"),
        )
        ctx.commanders[dev.id] = coord
        services.append(Service(f"device:{dev.id}", coord.run, restart=True))
    return services
