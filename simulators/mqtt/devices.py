"""Simulated MQTT devices: Shelly Gen2 plug, Tasmota plug, Zigbee2MQTT sensor and plug, and a
generic JSON sensor. Each has its own paho client (MQTT 5, so a fault can end the connection
*with* its last will, like a plug pulled from the wall) and acts on its commands like the real
device. Telemetry is published when `tick()` is called, at the injected clock's time.
"""

from __future__ import annotations

import abc
import asyncio
import json
import random
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.clock import Clock
from simulators.modbus.fridge_model import FridgeModel
from simulators.mqtt.plug_model import PlugModel


class SimDevice(abc.ABC):
    availability: str = ""
    online_payload = "online"
    offline_payload = "offline"
    command_topics: tuple[str, ...] = ()

    def __init__(self, host: str, port: int, address: str, clock: Clock, seed: int = 0) -> None:
        self.host = host
        self.port = port
        self.address = address
        self.clock = clock
        self.rng = random.Random(seed)
        self.commands: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{address}", protocol=mqtt.MQTTv5
        )
        self.client.will_set(self.availability, self.offline_payload, qos=1, retain=True)
        self.client.on_message = self._on_message

    async def start(self) -> None:
        ready = threading.Event()
        self.client.on_connect = lambda *a: ready.set()
        await asyncio.to_thread(self.client.connect, self.host, self.port, 30)
        self.client.loop_start()
        if not await asyncio.to_thread(ready.wait, 5):
            raise RuntimeError(f"simulator {self.address} could not connect")
        if self.command_topics:
            subscribed = threading.Event()
            self.client.on_subscribe = lambda *a: subscribed.set()
            self.client.subscribe([(t, 1) for t in self.command_topics])
            await asyncio.to_thread(subscribed.wait, 5)
        await self.send(self.availability, self.online_payload, retain=True)

    async def stop(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    async def crash(self) -> None:
        """Drop off the network: the broker publishes the last will (offline)."""
        self.client.disconnect(
            reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        )
        await asyncio.to_thread(self.client.loop_stop)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> Any:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    async def send(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        info = self.publish(topic, payload, retain)
        await asyncio.to_thread(info.wait_for_publish, 5)

    async def garbage(self, topic: str | None = None) -> bytes:
        """A malformed message on the device's data topic."""
        junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
        await self.send(topic or self.data_topic, junk)
        return junk

    @property
    @abc.abstractmethod
    def data_topic(self) -> str:
        """Where this device publishes its readings."""

    @abc.abstractmethod
    async def tick(self) -> None:
        """Advance the device's model and publish what it would."""

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.commands.append((msg.topic, bytes(msg.payload)))
            self.on_command(msg.topic, bytes(msg.payload))

    def on_command(self, topic: str, payload: bytes) -> None:  # noqa: B027 - optional hook
        """Act on a command; sensors have none, so by default nothing happens."""


class ShellyPlugSim(SimDevice):
    """Shelly Plus Plug S: full status now and then, NotifyStatus partials in between."""

    online_payload = "true"
    offline_payload = "false"

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        clock: Clock,
        seed: int = 0,
        appliance: str = "Coffeemaker",
    ) -> None:
        self.availability = f"{address}/online"
        self.command_topics = (f"{address}/rpc",)
        super().__init__(host, port, address, clock, seed)
        self.model = PlugModel(clock.time(), seed, appliance)
        self.ticks = 0

    @property
    def data_topic(self) -> str:
        return f"{self.address}/status/switch:0"

    def status(self) -> dict[str, Any]:
        m = self.model
        return {
            "id": 0,
            "source": "timer",
            "output": m.on,
            "apower": m.power,
            "voltage": m.voltage,
            "current": m.current,
            "freq": 50.0,
            "aenergy": {
                "total": round(m.energy_wh, 3),
                "by_minute": [0.0, 0.0, 0.0],
                "minute_ts": int(self.clock.time()),
            },
            "temperature": {"tC": m.temperature, "tF": round(m.temperature * 9 / 5 + 32, 1)},
        }

    async def tick(self, full: bool | None = None) -> None:
        self.model.advance_to(self.clock.time())
        if full or (full is None and self.ticks % 10 == 0):
            await self.send(self.data_topic, json.dumps(self.status()))
        else:
            await self.notify({"apower": self.model.power, "current": self.model.current})
        self.ticks += 1

    async def notify(self, fields: dict[str, Any]) -> None:
        await self.send(f"{self.address}/events/rpc", self._notify(fields))

    def _notify(self, fields: dict[str, Any]) -> str:
        return json.dumps(
            {
                "src": self.address,
                "dst": f"{self.address}/events",
                "method": "NotifyStatus",
                "params": {"ts": round(self.clock.time(), 2), "switch:0": {"id": 0, **fields}},
            }
        )

    def on_command(self, topic: str, payload: bytes) -> None:
        try:
            req = json.loads(payload)
            rid, src, method = req["id"], req["src"], req["method"]
        except (ValueError, KeyError, TypeError):
            return  # a real Shelly ignores what it cannot parse
        reply: dict[str, Any] = {"id": rid, "src": self.address, "dst": src}
        params = req.get("params") or {}
        if method == "Switch.Set" and params.get("id") == 0 and isinstance(params.get("on"), bool):
            was_on = self.model.on
            self.model.advance_to(self.clock.time())
            self.model.on = params["on"]
            reply["result"] = {"was_on": was_on}
            self.publish(f"{src}/rpc", json.dumps(reply))
            self.publish(
                f"{self.address}/events/rpc",
                self._notify({"output": self.model.on, "apower": self.model.power}),
            )
        else:
            reply["error"] = {"code": -105, "message": f"Argument error in {method}"}
            self.publish(f"{src}/rpc", json.dumps(reply))


class TasmotaPlugSim(SimDevice):
    online_payload = "Online"
    offline_payload = "Offline"

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        clock: Clock,
        seed: int = 0,
        appliance: str = "WaterKettle",
    ) -> None:
        self.availability = f"tele/{address}/LWT"
        self.command_topics = (f"cmnd/{address}/POWER",)
        super().__init__(host, port, address, clock, seed)
        self.model = PlugModel(clock.time(), seed, appliance)

    @property
    def data_topic(self) -> str:
        return f"tele/{self.address}/SENSOR"

    async def tick(self) -> None:
        m = self.model
        m.advance_to(self.clock.time())
        power = round(m.power)
        apparent = round(power / 0.95) if power else 0
        from datetime import UTC, datetime

        doc = {
            "Time": datetime.fromtimestamp(self.clock.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "ENERGY": {
                "TotalStartTime": "2022-03-20T15:20:48",
                "Total": round(m.energy_wh / 1000, 3),
                "Yesterday": 1.495,
                "Today": 0.537,
                "Period": 0,
                "Power": power,
                "ApparentPower": apparent,
                "ReactivePower": round(apparent * 0.31),
                "Factor": 0.95 if power else 0.0,
                "Voltage": round(m.voltage),
                "Current": m.current,
            },
        }
        await self.send(self.data_topic, json.dumps(doc))

    def on_command(self, topic: str, payload: bytes) -> None:
        cmd = payload.decode("utf-8", "replace").strip().upper()
        if cmd in ("ON", "1"):
            self.model.on = True
        elif cmd in ("OFF", "0"):
            self.model.on = False
        elif cmd == "TOGGLE":
            self.model.on = not self.model.on
        elif cmd:
            self.publish(f"stat/{self.address}/RESULT", '{"Command":"Error"}')
            return
        state = "ON" if self.model.on else "OFF"
        self.publish(f"stat/{self.address}/RESULT", json.dumps({"POWER": state}))
        self.publish(f"stat/{self.address}/POWER", state)


class Z2mSim(SimDevice):
    """A Zigbee2MQTT device: availability is Zigbee2MQTT's report, not an MQTT will."""

    def __init__(self, host: str, port: int, address: str, clock: Clock, seed: int = 0) -> None:
        self.availability = f"zigbee2mqtt/{address}/availability"
        self.online_payload = json.dumps({"state": "online"})
        self.offline_payload = json.dumps({"state": "offline"})
        super().__init__(host, port, address, clock, seed)

    @property
    def data_topic(self) -> str:
        return f"zigbee2mqtt/{self.address}"

    async def go_offline(self) -> None:
        await self.send(self.availability, self.offline_payload, retain=True)

    async def come_back(self) -> None:
        await self.send(self.availability, self.online_payload, retain=True)


class Z2mSensorSim(Z2mSim):
    model_id = "WSDCGQ11LM"

    def __init__(self, host: str, port: int, address: str, clock: Clock, seed: int = 0) -> None:
        super().__init__(host, port, address, clock, seed)
        self.fridge = FridgeModel(clock.time(), seed=seed)
        self.battery = 100 - seed % 20

    async def tick(self) -> None:
        st = self.fridge.advance_to(self.clock.time())
        doc = {
            "temperature": round(st.room, 2),
            "humidity": round(55 + self.rng.uniform(-5, 5), 1),
            "battery": self.battery,
            "linkquality": self.rng.randrange(60, 200),
        }
        await self.send(self.data_topic, json.dumps(doc))


class Z2mPlugSim(Z2mSim):
    model_id = "TS011F_plug_1"

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        clock: Clock,
        seed: int = 0,
        appliance: str = "Toaster",
    ) -> None:
        super().__init__(host, port, address, clock, seed)
        self.command_topics = (f"zigbee2mqtt/{address}/set",)
        self.model = PlugModel(clock.time(), seed, appliance)

    def state(self) -> str:
        m = self.model
        return json.dumps(
            {
                "state": "ON" if m.on else "OFF",
                "power": m.power,
                "energy": round(m.energy_wh / 1000, 3),
                "voltage": round(m.voltage),
                "current": m.current,
                "linkquality": 120,
            }
        )

    async def tick(self) -> None:
        self.model.advance_to(self.clock.time())
        await self.send(self.data_topic, self.state())

    def on_command(self, topic: str, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError):
            return
        if state in ("ON", "OFF", "TOGGLE"):
            self.model.on = (not self.model.on) if state == "TOGGLE" else state == "ON"
            self.publish(self.data_topic, self.state())


class GenericSensorSim(SimDevice):
    """An in-house board: JSON with its own timestamp on sensors/<id>/state."""

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        clock: Clock,
        seed: int = 0,
        time_offset_s: float = 0.0,
    ) -> None:
        self.availability = f"sensors/{address}/status"
        self.command_topics = (f"sensors/{address}/set",)
        super().__init__(host, port, address, clock, seed)
        self.fridge = FridgeModel(clock.time(), seed=seed)
        self.time_offset_s = time_offset_s  # a device clock that is not the box's

    @property
    def data_topic(self) -> str:
        return f"sensors/{self.address}/state"

    def reading(self) -> dict[str, Any]:
        st = self.fridge.advance_to(self.clock.time())
        return {
            "ts": round(self.clock.time() + self.time_offset_s, 3),
            "temperature": round(st.room, 2),
            "humidity": round(60 + self.rng.uniform(-3, 3), 1),
            "battery": 87,
        }

    async def tick(self) -> None:
        await self.send(self.data_topic, json.dumps(self.reading()))


SimFactory = Callable[..., SimDevice]


async def publish_z2m_bridge(sim: SimDevice, devices: list[Z2mSim]) -> None:
    """Zigbee2MQTT's retained device list (what discovery reads)."""
    entries: list[dict[str, Any]] = [
        {
            "friendly_name": "Coordinator",
            "type": "Coordinator",
            "ieee_address": "0x00124b0000000000",
        }
    ]
    for i, d in enumerate(devices):
        exposes: list[dict[str, Any]]
        if isinstance(d, Z2mPlugSim):
            exposes = [
                {"type": "switch", "features": [{"name": "state", "property": "state"}]},
                {"type": "numeric", "name": "power", "property": "power"},
            ]
        else:
            exposes = [
                {"type": "numeric", "name": "temperature", "property": "temperature"},
                {"type": "numeric", "name": "humidity", "property": "humidity"},
            ]
        entries.append(
            {
                "friendly_name": d.address,
                "type": "EndDevice",
                "ieee_address": f"0x00158d00{i:08x}",
                "definition": {"model": getattr(d, "model_id", "?"), "exposes": exposes},
            }
        )
    await sim.send("zigbee2mqtt/bridge/devices", json.dumps(entries), retain=True)
