"""A private system bus with BlueZoo on it: two virtual adapters that "hear" each other, hci0
for the box (bleak, the central) and hci1 for a simulated peripheral written against the real
BlueZ peripheral API (peripheral.py). Both processes run in their own process group and are
always killed by that group's id."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from simulators.ble.bluez_mock import MockError, PrivateSystemBus

CENTRAL_MAC = "00:AA:00:00:00:01"  # hci0
PERIPHERAL_MAC = "00:AA:00:00:00:02"  # hci1


def bluezoo_command() -> list[str]:
    exe = shutil.which("bluezoo", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "bluezoo"]


class PrivateBlueZoo(PrivateSystemBus):
    """dbus-daemon + bluezoo, started and stopped as a pair."""

    def __init__(self, scan_interval_s: int = 1) -> None:
        super().__init__()
        self.scan_interval_s = scan_interval_s

    def peer_command(self) -> list[str]:
        return [
            *bluezoo_command(),
            "--quiet",
            "--auto-enable",
            "--scan-interval",
            str(self.scan_interval_s),
            "-a",
            CENTRAL_MAC,
            "-a",
            PERIPHERAL_MAC,
        ]

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until both adapters are exported and powered."""
        bus = await MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM).connect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while not await _powered(bus, "hci0") or not await _powered(bus, "hci1"):
                if self._peer is not None and self._peer.poll() is not None:
                    raise MockError(f"bluezoo exited with {self._peer.returncode}")
                if loop.time() > deadline:
                    raise MockError("BlueZoo adapters did not appear on the private bus")
                await asyncio.sleep(0.05)
        finally:
            bus.disconnect()


async def _powered(bus: MessageBus, adapter: str) -> bool:
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path=f"/org/bluez/{adapter}",
            interface="org.freedesktop.DBus.Properties",
            member="Get",
            signature="ss",
            body=["org.bluez.Adapter1", "Powered"],
        )
    )
    return (
        reply is not None
        and reply.message_type == MessageType.METHOD_RETURN
        and bool(reply.body[0].value)
    )
