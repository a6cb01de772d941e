"""A private system bus with python-dbusmock's `bluez5` template on it, and a dbus-fast
controller that scripts it: adapters, devices, advert updates, GATT objects.

bleak talks real D-Bus to it once `DBUS_SYSTEM_BUS_ADDRESS` points at the private bus (set it
before bleak first connects). Both processes run in their own process group and are always
killed by that group's id.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/>
    <allow send_type="method_call"/> <allow send_type="signal"/>
    <allow send_type="method_return"/> <allow send_type="error"/>
    <allow receive_type="method_call"/> <allow receive_type="signal"/>
    <allow receive_type="method_return"/> <allow receive_type="error"/>
  </policy>
</busconfig>
"""

DEVICE_IFACE = "org.bluez.Device1"
MOCK_IFACE = "org.freedesktop.DBus.Mock"
OM_IFACE = "org.freedesktop.DBus.ObjectManager"


class MockError(RuntimeError):
    pass


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class PrivateSystemBus(abc.ABC):
    """A private dbus-daemon with one BlueZ peer process on it, both in their own process
    groups, stopped together."""

    def __init__(self) -> None:
        self.address = ""
        self._daemon: subprocess.Popen[str] | None = None
        self._peer: subprocess.Popen[bytes] | None = None
        self._conf = ""

    @abc.abstractmethod
    def peer_command(self) -> list[str]:
        """The BlueZ peer to run on the private bus (dbusmock bluez5, BlueZoo)."""

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
        self._peer = subprocess.Popen(
            self.peer_command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address},
            start_new_session=True,
        )
        return self.address

    def stop(self) -> None:
        for proc in (self._peer, self._daemon):
            if proc is not None:
                _kill_group(proc)
                if proc.stdout is not None:
                    proc.stdout.close()
        self._peer = self._daemon = None
        if self._conf:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._conf)


class PrivateBluez(PrivateSystemBus):
    """dbus-daemon + dbusmock bluez5, started and stopped as a pair."""

    def peer_command(self) -> list[str]:
        return [sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5"]


def device_path(adapter: str, mac: str) -> str:
    return f"/org/bluez/{adapter}/dev_{mac.upper().replace(':', '_')}"


class BluezControl:
    """Scripts the mock over dbus-fast (the test process needs no dbus-python)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    @classmethod
    async def connect(cls, address: str, ready_timeout_s: float = 5.0) -> BluezControl:
        bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
        ctl = cls(bus)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout_s
        while not await ctl._has_bluez():
            if loop.time() > deadline:
                bus.disconnect()
                raise MockError("org.bluez did not appear on the private bus")
            await asyncio.sleep(0.02)
        return ctl

    async def _has_bluez(self) -> bool:
        body = await self.call(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            ["org.bluez"],
            destination="org.freedesktop.DBus",
        )
        return bool(body[0])

    async def call(
        self,
        path: str,
        iface: str,
        member: str,
        sig: str = "",
        body: list[Any] | None = None,
        destination: str = "org.bluez",
    ) -> list[Any]:
        reply = await self.bus.call(
            Message(
                destination=destination,
                path=path,
                interface=iface,
                member=member,
                signature=sig,
                body=body or [],
            )
        )
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise MockError(f"{member}: {reply.error_name} {reply.body}")
        return list(reply.body)

    async def close(self) -> None:
        self.bus.disconnect()

    # adapters -----------------------------------------------------------------------------
    async def add_adapter(self, name: str = "hci0") -> str:
        path = (await self.call("/org/bluez", "org.bluez.Mock", "AddAdapter", "ss", [name, name]))[
            0
        ]
        return str(path)

    async def remove_adapter(self, name: str = "hci0") -> None:
        await self.call("/org/bluez", "org.bluez.Mock", "RemoveAdapterWithDevices", "s", [name])

    # devices ------------------------------------------------------------------------------
    async def add_object(
        self,
        path: str,
        iface: str,
        props: Mapping[str, Variant],
        methods: list[tuple[str, str, str, str]] | None = None,
    ) -> None:
        await self.call(
            "/org/bluez",
            MOCK_IFACE,
            "AddObject",
            "ssa{sv}a(ssss)",
            [path, iface, dict(props), methods or []],
        )
        await self.call(
            "/",
            MOCK_IFACE,
            "EmitSignal",
            "sssav",
            [
                OM_IFACE,
                "InterfacesAdded",
                "oa{sa{sv}}",
                [Variant("o", path), Variant("a{sa{sv}}", {iface: dict(props)})],
            ],
        )

    async def add_device(self, adapter: str, mac: str, name: str = "") -> str:
        """A device object with correctly typed advert properties, connectable over GATT."""
        path = device_path(adapter, mac)
        props = {
            "Address": Variant("s", mac.upper()),
            "AddressType": Variant("s", "public"),
            "Alias": Variant("s", name or mac.upper()),
            "Adapter": Variant("o", f"/org/bluez/{adapter}"),
            "Paired": Variant("b", False),
            "Trusted": Variant("b", False),
            "Blocked": Variant("b", False),
            "Connected": Variant("b", False),
            "ServicesResolved": Variant("b", False),
            "LegacyPairing": Variant("b", False),
            "UUIDs": Variant("as", []),
            "RSSI": Variant("n", -127),
            "ServiceData": Variant("a{sv}", {}),
            "ManufacturerData": Variant("a{qv}", {}),
        }
        if name:
            props["Name"] = Variant("s", name)
        connect = (
            "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(True), "
            "'ServicesResolved': dbus.Boolean(True)})"
        )
        disconnect = (
            "self.UpdateProperties('org.bluez.Device1', {'ServicesResolved': "
            "dbus.Boolean(False), 'Connected': dbus.Boolean(False)})"
        )
        await self.add_object(
            path,
            DEVICE_IFACE,
            props,
            [("Connect", "", "", connect), ("Disconnect", "", "", disconnect)],
        )
        return path

    async def update(self, path: str, iface: str, props: Mapping[str, Variant]) -> None:
        await self.call(path, MOCK_IFACE, "UpdateProperties", "sa{sv}", [iface, dict(props)])

    async def advertise(
        self,
        path: str,
        rssi: int,
        *,
        service_data: Mapping[str, bytes] | None = None,
        manufacturer_data: Mapping[int, bytes] | None = None,
        uuids: tuple[str, ...] | None = None,
    ) -> None:
        """One "advert": BlueZ reports it as a PropertiesChanged on the device."""
        props: dict[str, Variant] = {"RSSI": Variant("n", rssi)}
        if service_data is not None:
            props["ServiceData"] = Variant(
                "a{sv}", {k: Variant("ay", v) for k, v in service_data.items()}
            )
        if manufacturer_data is not None:
            props["ManufacturerData"] = Variant(
                "a{qv}", {k: Variant("ay", v) for k, v in manufacturer_data.items()}
            )
        if uuids is not None:
            props["UUIDs"] = Variant("as", list(uuids))
        await self.update(path, DEVICE_IFACE, props)

    async def set_connected(self, path: str, connected: bool) -> None:
        await self.update(
            path,
            DEVICE_IFACE,
            {"Connected": Variant("b", connected), "ServicesResolved": Variant("b", connected)},
        )
