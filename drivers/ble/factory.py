"""Services for ble devices."""

from __future__ import annotations

from drivers.base import Devices, DriverContext
from drivers.errors import DriverError
from edge_agent.supervisor import Service


def build(ctx: DriverContext, devices: Devices) -> list[Service]:
    raise DriverError("the ble driver is not part of this build")
