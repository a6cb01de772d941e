"""A simulated BLE logger on the BlueZ mock: a GATT service with a live-notify characteristic
and the `beerflow_log_v1` history protocol (drivers/ble/history.py).

dbusmock runs the characteristic methods; the control characteristic's WriteValue re-emits
its value as PropertiesChanged, which this simulator (in the caller's process) watches and
answers by pushing notifications on the data characteristic."""

from __future__ import annotations

import asyncio
import contextlib

from dbus_fast import Message, MessageType, Variant

from drivers.ble import history
from drivers.errors import CodecError
from firmware_profiles.sections.ble import BleGatt, full_uuid
from simulators.ble.bluez_mock import BluezControl

CHAR_IFACE = "org.bluez.GattCharacteristic1"
_READ = "ret = self.props['org.bluez.GattCharacteristic1']['Value']"
_WRITE = (
    "self.UpdateProperties('org.bluez.GattCharacteristic1', "
    "{'Value': dbus.Array(args[0], signature='y')})"
)
_START = "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(True)})"
_STOP = "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(False)})"


class SimLogger:
    def __init__(self, ctl: BluezControl, device_path: str, gatt: BleGatt) -> None:
        self.ctl = ctl
        self.gatt = gatt
        self.device = device_path
        self.service = f"{device_path}/service000a"
        self.live = f"{self.service}/char000b"
        self.control = f"{self.service}/char000d"
        self.data = f"{self.service}/char000f"
        self.records: list[history.LogRecord] = []
        self.requests: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(self) -> None:
        ctl = self.ctl
        await ctl.add_object(
            self.service,
            "org.bluez.GattService1",
            {
                "UUID": Variant("s", full_uuid(self.gatt.service)),
                "Device": Variant("o", self.device),
                "Primary": Variant("b", True),
            },
        )
        chars = [
            (self.live, self.gatt.live, ["read", "notify"]),
            (self.control, self.gatt.history_control, ["write"]),
            (self.data, self.gatt.history_data, ["notify"]),
        ]
        for path, uuid, flags in chars:
            if uuid is None:
                continue
            await ctl.add_object(
                path,
                CHAR_IFACE,
                {
                    "UUID": Variant("s", full_uuid(uuid)),
                    "Service": Variant("o", self.service),
                    "Value": Variant("ay", b""),
                    "Notifying": Variant("b", False),
                    "Flags": Variant("as", flags),
                },
                [
                    ("ReadValue", "a{sv}", "ay", _READ),
                    ("WriteValue", "aya{sv}", "", _WRITE),
                    ("StartNotify", "", "", _START),
                    ("StopNotify", "", "", _STOP),
                ],
            )
        rule = (
            "type='signal',interface='org.freedesktop.DBus.Properties',"
            f"member='PropertiesChanged',path='{self.control}'"
        )
        await ctl.call(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [rule],
            destination="org.freedesktop.DBus",
        )
        ctl.bus.add_message_handler(self._on_message)

    def _on_message(self, msg: Message) -> None:
        if (
            msg.message_type != MessageType.SIGNAL
            or msg.path != self.control
            or msg.member != "PropertiesChanged"
        ):
            return
        value = msg.body[1].get("Value")
        if value is None:
            return
        with contextlib.suppress(CodecError):
            since = history.parse_request(bytes(value.value))
            self.requests.append(since)
            task = asyncio.get_running_loop().create_task(self._answer(since))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, since: int) -> None:
        for chunk in history.answer(self.records, since):
            await self.ctl.update(self.data, CHAR_IFACE, {"Value": Variant("ay", chunk)})

    async def notify_live(self, rec: history.LogRecord) -> None:
        self.records.append(rec)
        payload = history.encode_record(rec)
        await self.ctl.update(self.live, CHAR_IFACE, {"Value": Variant("ay", payload)})

    async def drop_link(self) -> None:
        """A peripheral-initiated disconnect (out of range, battery swap)."""
        await self.ctl.set_connected(self.device, False)

    def close(self) -> None:
        self.ctl.bus.remove_message_handler(self._on_message)
