"""A simulated BLE logger written against the real BlueZ *peripheral* API, as firmware on a
Linux board would be: it registers an advertisement (`LEAdvertisingManager1`) carrying a
BTHome v2 payload and a GATT application (`GattManager1`) with the `beerflow_log_v1` service
(live notifications and history, drivers/ble/history.py) on its own adapter.

Runs against BlueZoo (two virtual adapters on one D-Bus) in tests; nothing here is
BlueZoo-specific. No ManufacturerData: BlueZoo 1.0.2 cannot export it (TESTING.md §1 B).

No `from __future__ import annotations` here: dbus-fast reads the D-Bus signatures from the
annotations at class creation.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from drivers.ble import history
from drivers.errors import CodecError
from firmware_profiles.sections.ble import BleGatt, full_uuid
from simulators.ble import payloads

BTHOME_UUID = full_uuid("fcd2")
APP_ROOT = "/com/beerflow/sim"
# Outside the app root, so the GATT app's GetManagedObjects shows only GATT objects.
ADVERT_PATH = "/com/beerflow/advert0"
SERVICE_PATH = f"{APP_ROOT}/service0"

DBusStrList = Annotated[list[str], DBusSignature("as")]


class PeripheralError(RuntimeError):
    pass


class Advertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1: BlueZ re-reads it, so changing ServiceData re-advertises."""

    def __init__(self, local_name: str) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self.local_name = local_name
        self.service_data: dict[str, bytes] = {}
        self.released = False

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return {k: Variant("ay", v) for k, v in self.service_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:
        # BlueZoo ignores an advertisement that is not discoverable.
        return True

    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> DBusStr:
        return self.local_name

    @dbus_method()
    def Release(self) -> None:
        self.released = True

    def set_service_data(self, uuid: str, payload: bytes) -> None:
        self.service_data = {uuid: payload}
        self.emit_properties_changed({"ServiceData": self.ServiceData})


class GattService(ServiceInterface):
    def __init__(self, uuid: str) -> None:
        super().__init__("org.bluez.GattService1")
        self.uuid = uuid

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


class Characteristic(ServiceInterface):
    """org.bluez.GattCharacteristic1. `Value` and `Notifying` are D-Bus properties and
    `Confirm()` exists because BlueZ(oo) relays a notification as a change of `Value`."""

    def __init__(
        self,
        uuid: str,
        service_path: str,
        flags: list[str],
        on_write: Callable[[bytes], None] | None = None,
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.uuid = uuid
        self.service_path = service_path
        self.flags = flags
        self.on_write = on_write
        self.value = b""
        self.notifying = False
        self.subscriptions = 0
        self.confirms = 0

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self.service_path

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self.flags

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        return self.value

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        self.value = bytes(value)
        if self.on_write is not None:
            self.on_write(self.value)

    @dbus_method()
    def StartNotify(self) -> None:
        self.subscriptions += 1
        self.set_notifying(True)

    @dbus_method()
    def StopNotify(self) -> None:
        self.set_notifying(False)

    @dbus_method()
    def Confirm(self) -> None:
        self.confirms += 1

    def set_notifying(self, on: bool) -> None:
        if self.notifying != on:
            self.notifying = on
            self.emit_properties_changed({"Notifying": on})

    def notify(self, payload: bytes) -> bool:
        """Send a notification; False (nothing sent) when no central subscribed."""
        if not self.notifying:
            return False
        self.value = payload
        self.emit_properties_changed({"Value": payload})
        return True


class SimPeripheral:
    """One simulated logger on `adapter`: BTHome adverts plus the beerflow_log_v1 service."""

    def __init__(self, gatt: BleGatt, local_name: str = "BF-Logger") -> None:
        self.gatt = gatt
        self.bus: MessageBus | None = None
        self.adapter_path = ""
        self.advert = Advertisement(local_name)
        self.service = GattService(full_uuid(gatt.service))
        self.live = Characteristic(full_uuid(gatt.live), SERVICE_PATH, ["read", "notify"])
        self.chars: dict[str, Characteristic] = {f"{SERVICE_PATH}/char0": self.live}
        self.control: Characteristic | None = None
        self.data: Characteristic | None = None
        if gatt.history_control is not None and gatt.history_data is not None:
            self.control = Characteristic(
                full_uuid(gatt.history_control), SERVICE_PATH, ["write"], self._on_request
            )
            self.data = Characteristic(full_uuid(gatt.history_data), SERVICE_PATH, ["notify"])
            self.chars[f"{SERVICE_PATH}/char1"] = self.control
            self.chars[f"{SERVICE_PATH}/char2"] = self.data
        self.records: list[history.LogRecord] = []
        self.requests: list[int] = []
        self.packet_id = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, bus_address: str, adapter: str = "hci1") -> None:
        self.adapter_path = f"/org/bluez/{adapter}"
        self.bus = await MessageBus(bus_address=bus_address, bus_type=BusType.SYSTEM).connect()
        bus = self.bus
        bus.export(ADVERT_PATH, self.advert)
        bus.export(SERVICE_PATH, self.service)
        for path, char in self.chars.items():
            bus.export(path, char)
        # dbus-fast answers GetManagedObjects on the app root by itself (no ObjectManager code).
        await self._call("org.bluez.GattManager1", "RegisterApplication", "oa{sv}", [APP_ROOT, {}])
        await self._call(
            "org.bluez.LEAdvertisingManager1", "RegisterAdvertisement", "oa{sv}", [ADVERT_PATH, {}]
        )

    async def _call(self, iface: str, member: str, sig: str, body: list[Any]) -> list[Any]:
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination="org.bluez",
                path=self.adapter_path,
                interface=iface,
                member=member,
                signature=sig,
                body=body,
            )
        )
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise PeripheralError(f"{member}: {reply.error_name} {reply.body}")
        return list(reply.body)

    def advertise(self, temp_c: float, hum: float, battery: int = 90) -> None:
        """A new measurement in the advert (new BTHome packet id)."""
        self.packet_id = (self.packet_id + 1) & 0xFF
        payload = payloads.bthome(self.packet_id, temp_c, hum, battery)
        self.advert.set_service_data(BTHOME_UUID, payload)

    def notify_live(self, rec: history.LogRecord) -> bool:
        self.records.append(rec)
        return self.live.notify(history.encode_record(rec))

    async def disconnect(self, central_mac: str) -> None:
        """A peripheral-initiated disconnect, through BlueZ's Device1 for the central."""
        path = device_path(self.adapter_path, central_mac)
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination="org.bluez",
                path=path,
                interface="org.bluez.Device1",
                member="Disconnect",
            )
        )
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise PeripheralError(f"Disconnect: {reply.error_name} {reply.body}")
        self.link_lost()

    def link_lost(self) -> None:
        """What BlueZ does to a peripheral's subscriptions when the link drops."""
        for char in self.chars.values():
            char.set_notifying(False)

    def _on_request(self, value: bytes) -> None:
        with contextlib.suppress(CodecError):
            since = history.parse_request(value)
            self.requests.append(since)
            # Answer after WriteValue has returned, as a logger does after the write response.
            task = asyncio.get_running_loop().create_task(self._answer(since))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, since: int) -> None:
        assert self.data is not None
        for chunk in history.answer(self.records, since):
            self.data.notify(chunk)

    async def stop(self) -> None:
        bus = self.bus
        if bus is None:
            return
        with contextlib.suppress(PeripheralError, DBusError, EOFError, OSError):
            await self._call(
                "org.bluez.LEAdvertisingManager1", "UnregisterAdvertisement", "o", [ADVERT_PATH]
            )
            await self._call("org.bluez.GattManager1", "UnregisterApplication", "o", [APP_ROOT])
        self.bus = None
        for task in list(self._tasks):
            task.cancel()
        bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.wait_for_disconnect(), 2)  # type: ignore[no-untyped-call]


def device_path(adapter_path: str, mac: str) -> str:
    return f"{adapter_path}/dev_{mac.upper().replace(':', '_')}"
