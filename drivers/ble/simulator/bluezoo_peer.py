"""A private system bus with BlueZoo on it: two virtual adapters that "hear" each other, hci0
for the box (bleak, the central) and hci1 for a simulated peripheral written against the real
BlueZ peripheral API (peripheral.py). Both processes run in their own process group and are
always killed by that group's id."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from drivers.ble.simulator.bluez_mock import BUS_CONF, MockError, _kill_group

CENTRAL_MAC = "00:AA:00:00:00:01"  # hci0
PERIPHERAL_MAC = "00:AA:00:00:00:02"  # hci1


def bluezoo_command() -> list[str]:
    exe = shutil.which("bluezoo", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "bluezoo"]


class PrivateBlueZoo:
    """dbus-daemon + bluezoo, started and stopped as a pair."""

    def __init__(self, scan_interval_s: int = 1) -> None:
        self.scan_interval_s = scan_interval_s
        self.address = ""
        self._daemon: subprocess.Popen[str] | None = None
        self._zoo: subprocess.Popen[bytes] | None = None
        self._conf = ""

    def start(self) -> str:
        fd, self._conf = tempfile.mkstemp(prefix="beerflow-bus-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(BUS_CONF)
        self._daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self._conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self._daemon.stdout is not None
        self.address = self._daemon.stdout.readline().strip()
        if not self.address:
            self.stop()
            raise MockError("dbus-daemon did not print its address")
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        self._zoo = subprocess.Popen(
            [
                *bluezoo_command(),
                "--quiet",
                "--auto-enable",
                "--scan-interval",
                str(self.scan_interval_s),
                "-a",
                CENTRAL_MAC,
                "-a",
                PERIPHERAL_MAC,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        return self.address

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until both adapters are exported and powered."""
        bus = await MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM).connect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while not await _powered(bus, "hci0") or not await _powered(bus, "hci1"):
                if self._zoo is not None and self._zoo.poll() is not None:
                    raise MockError(f"bluezoo exited with {self._zoo.returncode}")
                if loop.time() > deadline:
                    raise MockError("BlueZoo adapters did not appear on the private bus")
                await asyncio.sleep(0.05)
        finally:
            bus.disconnect()

    def stop(self) -> None:
        for proc in (self._zoo, self._daemon):
            if proc is not None:
                _kill_group(proc)
                if proc.stdout is not None:
                    proc.stdout.close()
        self._zoo = self._daemon = None
        if self._conf:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._conf)


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
