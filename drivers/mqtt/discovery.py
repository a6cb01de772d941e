"""Listen on a broker for device announcements and propose `[[devices]]` entries.

Shelly Gen2 devices publish `<id>/online` (retained), Tasmota `tele/<topic>/LWT` (retained) and
Zigbee2MQTT its device list on `zigbee2mqtt/bridge/devices` (retained), so a short listen finds
every device that has ever connected, even idle ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.errors import DeviceIOError
from drivers.mqtt.link import read_password
from edge_agent.config.model import BrokerConfig

FILTERS = ("+/online", "tele/+/LWT", "zigbee2mqtt/bridge/devices")


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return s or "device"


def propose(topic: str, payload: bytes, broker_id: str) -> list[dict[str, str]]:
    """Pure: one announcement → zero or more proposed device entries."""
    levels = topic.split("/")
    if len(levels) == 2 and levels[1] == "online" and levels[0].startswith("shelly"):
        return [_entry(levels[0], "shelly-plus-plug-s", broker_id)]
    if len(levels) == 3 and levels[0] == "tele" and levels[2] == "LWT":
        return [_entry(levels[1], "tasmota-plug", broker_id)]
    if topic == "zigbee2mqtt/bridge/devices":
        try:
            devices = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return []
        out = []
        for d in devices if isinstance(devices, list) else []:
            if not isinstance(d, dict) or d.get("type") == "Coordinator":
                continue
            name = d.get("friendly_name")
            exposes = json.dumps((d.get("definition") or {}).get("exposes", []))
            if not isinstance(name, str):
                continue
            if '"switch"' in exposes:
                out.append(_entry(name, "zigbee2mqtt-plug", broker_id))
            elif '"temperature"' in exposes:
                out.append(_entry(name, "zigbee2mqtt-temperature-sensor", broker_id))
        return out
    return []


def _entry(address: str, profile: str, broker_id: str) -> dict[str, str]:
    return {"id": _slug(address), "profile": profile, "broker": broker_id, "address": address}


async def discover(broker: BrokerConfig, seconds: float) -> list[dict[str, str]]:
    loop = asyncio.get_running_loop()
    found: dict[tuple[str, str], dict[str, str]] = {}
    lock = threading.Lock()
    connected = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            for e in propose(msg.topic, bytes(msg.payload), broker.id):
                found.setdefault((e["broker"], e["address"]), e)

    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"beerflow-discover-{os.getpid()}",
        clean_session=True,
    )
    if broker.tls:
        c.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    if broker.username is not None:
        pw = read_password(broker.password_file) if broker.password_file else None
        c.username_pw_set(broker.username, pw)
    c.on_message = on_message
    c.on_connect = lambda *a: connected.set()
    try:
        await asyncio.to_thread(c.connect, broker.host, broker.port, broker.keepalive_s)
    except (OSError, ssl.SSLError) as exc:
        raise DeviceIOError(f"broker {broker.id}: cannot connect: {exc}") from exc
    c.loop_start()
    try:
        if not await loop.run_in_executor(None, connected.wait, 5):
            raise DeviceIOError(f"broker {broker.id}: no CONNACK")
        c.subscribe([(f, 1) for f in FILTERS])
        await asyncio.sleep(seconds)
    finally:
        c.disconnect()
        await asyncio.to_thread(c.loop_stop)
    with lock:
        return sorted(found.values(), key=lambda e: (e["profile"], e["address"]))
