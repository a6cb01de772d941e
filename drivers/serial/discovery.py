"""Find an MT-SICS scale on a serial port: try the usual baud rates, ask `I2` (identity), fall
back to `S`, and propose the venue-config entries for what answered.

An installer runs this interactively, so it waits in real time (bounded per baud rate). Over a
pty every baud rate "works"; on a real line the wrong rate gives garbage or silence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from drivers.errors import CodecError, DeviceIOError
from drivers.serial.line import PortSettings, SerialLine
from drivers.serial.mtsics import Done, OutOfRange, Weight, decode_reply, encode_request
from drivers.serial.mtsics import parse_identity as parse_i2
from edge_agent.clock import Clock, SystemClock


async def _ask(line: SerialLine, command: str, timeout_s: float) -> Any:
    line.discard_input()
    line.write_line(encode_request(command))
    for _ in range(4):  # skip a stray line or two left from a previous rate
        try:
            reply = decode_reply(await line.read_line(timeout_s))
        except CodecError:
            continue
        if not isinstance(reply, Done | Weight | OutOfRange):
            return reply
        if reply.command in (command, "S"):
            return reply
    return None


async def probe(
    port: str,
    baudrates: Sequence[int] = (9600, 19200, 2400, 4800),
    *,
    timeout_s: float = 0.5,
    clock: Clock | None = None,
) -> dict[str, Any] | None:
    """What answers MT-SICS on `port`, as `{"bus": {...}, "device": {...}, ...}` ready to be
    written as `[[buses]]` and `[[devices]]`; None when nothing recognisable answered."""
    clock = clock or SystemClock()
    for baud in baudrates:
        line = SerialLine(PortSettings(port, baud, exclusive=False), clock)
        try:
            line.open()
            try:
                ident = await _ask(line, "I2", timeout_s)
            except DeviceIOError:
                ident = None
            weight = await _ask(line, "S", timeout_s) if not isinstance(ident, Done) else None
        except DeviceIOError:
            continue
        finally:
            line.close()
        if isinstance(ident, Done) and ident.command == "I2":
            model, capacity, unit = parse_i2(ident.text)
            return _proposal(port, baud, model, capacity, unit)
        if isinstance(weight, Weight | OutOfRange):
            unit = weight.unit if isinstance(weight, Weight) else None
            return _proposal(port, baud, "MT-SICS scale", None, unit)
    return None


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40] or "scale"


def _proposal(
    port: str, baud: int, model: str, capacity: float | None, unit: str | None
) -> dict[str, Any]:
    bus_id = f"{_slug(port.rsplit('/', 1)[-1])}-line"
    capacity_kg = (
        capacity * {"g": 1e-3, "kg": 1.0, "t": 1e3}.get(unit or "kg", 1.0) if capacity else None
    )
    # A platform of 60 kg or more with nothing else known is most likely under a keg.
    profile = (
        "keg-scale-mtsics"
        if capacity_kg is not None and capacity_kg >= 60
        else "mettler-toledo-mtsics"
    )
    return {
        "protocol": "mt-sics",
        "model": model,
        "capacity": capacity,
        "unit": unit,
        "bus": {"id": bus_id, "type": "rs232", "port": port, "baudrate": baud},
        "device": {
            "id": _slug(model),
            "profile": profile,
            "bus": bus_id,
            "label": model,
            "poll_interval_s": 1.0,
        },
    }
