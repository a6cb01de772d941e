"""BLE services: one scanner for every BLE sensor of the box (routing adverts by MAC), plus a
GATT session per device whose profile has a [ble.gatt] table."""

from __future__ import annotations

import random

from drivers.base import Devices, DriverContext
from drivers.ble.backend import BleakScannerBackend
from drivers.ble.gatt import GattSession
from drivers.ble.scan_service import BleScanService
from drivers.ble.sensor import BleSensor
from edge_agent.supervisor import Service


def build(ctx: DriverContext, devices: Devices) -> list[Service]:
    cfg = ctx.config.ble
    sensors = [BleSensor(dev, prof, ctx.health.register(dev.id, "ble")) for dev, prof in devices]
    matches = [prof.ble.match for _, prof in devices if prof.ble is not None]
    backend = BleakScannerBackend(cfg.adapter, matches)
    scan = BleScanService(
        cfg.adapter, sensors, backend, ctx.bus, ctx.clock, cfg.watchdog_s, random.Random(0)
    )
    ctx.shared["ble"] = scan
    services = [Service(f"ble:{cfg.adapter}", scan.run, stop=scan.stop, restart=True)]
    for sensor in sensors:
        if sensor.section.gatt is not None:
            session = GattSession(sensor, scan, ctx.bus, ctx.clock)
            services.append(Service(f"device:{sensor.device.id}:gatt", session.run, restart=True))
    return services
