"""Pure command encoding: typed, range-checked arguments → topic payload; replies → outcome."""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass
from typing import Any

from drivers.errors import CommandRejected
from drivers.mqtt.codec import MISSING, resolve
from edge_agent.messages import Value
from firmware_profiles.sections.mqtt import MqttArg, MqttCommand


@dataclass(frozen=True, slots=True)
class Rendered:
    payload: str
    expect: str | None  # what the reply's value must be, rendered from the same arguments


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    done: bool  # False: not (yet) the reply we wait for
    ok: bool = False
    value: Value | None = None
    error: str | None = None


def check_arg(spec: MqttArg, raw: Value) -> str:
    """Validate one argument and return how it is written into the payload."""
    if spec.type == "bool":
        if not isinstance(raw, bool):
            raise CommandRejected(f"{spec.name}: expected true or false, got {raw!r}")
        return spec.true_text if raw else spec.false_text
    if spec.type == "choice":
        if not isinstance(raw, str) or raw not in spec.choices:
            raise CommandRejected(f"{spec.name}: must be one of {', '.join(spec.choices)}")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise CommandRejected(f"{spec.name}: expected a number, got {raw!r}")
    if not math.isfinite(raw):
        raise CommandRejected(f"{spec.name}: {raw} is not a finite number")
    if spec.type == "int" and raw != int(raw):
        raise CommandRejected(f"{spec.name}: expected a whole number, got {raw}")
    if spec.min is not None and raw < spec.min:
        raise CommandRejected(f"{spec.name}: {raw} is below the minimum {spec.min:g}")
    if spec.max is not None and raw > spec.max:
        raise CommandRejected(f"{spec.name}: {raw} is above the maximum {spec.max:g}")
    return str(int(raw)) if spec.type == "int" else json.dumps(float(raw))


def render(spec: MqttCommand, args: dict[str, Value], rpc_id: int = 0, src: str = "") -> Rendered:
    """Raises CommandRejected for a missing, unknown or out-of-range argument."""
    known = {a.name: a for a in spec.args}
    extra = sorted(set(args) - set(known))
    if extra:
        raise CommandRejected(f"unknown argument(s) {', '.join(extra)} for {spec.name}")
    values: dict[str, str] = {}
    for a in spec.args:
        if a.name not in args:
            raise CommandRejected(f"missing argument {a.name!r} for {spec.name}")
        values[a.name] = check_arg(a, args[a.name])
    if spec.rpc:
        values["rpc_id"] = str(rpc_id)
        values["src"] = src
    payload = string.Template(spec.payload).substitute(values)
    expect = string.Template(spec.expect).substitute(values) if spec.expect is not None else None
    return Rendered(payload, expect)


def judge_reply(spec: MqttCommand, rendered: Rendered, payload: bytes, rpc_id: int) -> ReplyOutcome:
    """Is this message the reply to our command, and did the device do it?"""
    try:
        doc: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        try:
            doc = payload.decode("utf-8").strip()  # Tasmota's stat/<t>/POWER is plain text
        except UnicodeDecodeError:
            return ReplyOutcome(False)
    if spec.rpc and (not isinstance(doc, dict) or doc.get("id") != rpc_id):
        return ReplyOutcome(False)  # another request's reply
    if spec.error_path:
        err = resolve(doc, spec.error_path)
        if err is not MISSING:
            return ReplyOutcome(True, False, error=f"device refused: {str(err)[:200]}")
    value = resolve(doc, spec.reply_path)
    if value is MISSING:
        return ReplyOutcome(False)
    result: Value | None = value if isinstance(value, bool | int | float | str) else None
    if (
        rendered.expect is not None
        and str(value if not isinstance(value, bool) else json.dumps(value)) != rendered.expect
    ):
        return ReplyOutcome(False)  # a state report from before our command took effect
    return ReplyOutcome(True, True, value=result)
