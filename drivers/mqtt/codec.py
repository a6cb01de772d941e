"""The pure MQTT codec: (topic, payload bytes) of one device → typed values, per its profile.

No sockets, clocks or loggers here: the receive time comes in as `now`. A `DeviceCodec` keeps
the last full status of each topic that others overlay (Shelly's NotifyStatus carries only the
fields that changed), so a partial update is merged onto it before points are read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drivers.errors import CodecError
from edge_agent.messages import Value
from firmware_profiles.sections.mqtt import (
    AVAILABILITY,
    MqttAvailability,
    MqttPoint,
    MqttSection,
    MqttTopic,
    TimestampFormat,
)

MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Decoded:
    values: tuple[tuple[MqttPoint, Value], ...] = ()
    ts: float | None = None  # the device's own time, when it sent one we trust
    online: bool | None = None  # set by an availability message
    problems: tuple[str, ...] = ()  # fields that did not fit (the rest still counts)


def render_topic(pattern: str, device: str, client: str = "") -> str:
    return pattern.replace("{device}", device).replace("{client}", client)


def resolve(doc: Any, path: str) -> Any:
    """The value at a dotted path ('' is the whole document), list elements by index; MISSING
    when absent."""
    if not path:
        return doc
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, MISSING)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
        if cur is MISSING:
            return MISSING
    return cur


def deep_merge(base: Mapping[str, Any], partial: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `partial` overlaid on `base`, nested objects merged, everything else replaced."""
    out = dict(base)
    for k, v in partial.items():
        old = out.get(k)
        out[k] = deep_merge(old, v) if isinstance(old, dict) and isinstance(v, dict) else v
    return out


def parse_json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"not JSON: {payload[:40]!r}") from exc


def parse_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CodecError(f"not UTF-8 text: {payload[:40]!r}") from exc


def parse_timestamp(raw: Any, fmt: TimestampFormat) -> float:
    if fmt == "iso8601":
        if not isinstance(raw, str):
            raise CodecError(f"timestamp {raw!r} is not an ISO 8601 string")
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise CodecError(f"timestamp {raw!r} is not ISO 8601") from exc
        # A time without a zone is taken as UTC: devices keep UTC unless told otherwise.
        ts = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    else:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise CodecError(f"timestamp {raw!r} is not a number")
        ts = raw / 1000 if fmt == "unix_ms" else float(raw)
    if not math.isfinite(ts) or ts <= 0:
        raise CodecError(f"timestamp {raw!r} is out of range")
    return ts


def convert(point: MqttPoint, raw: Any) -> Value:
    """A JSON or text value → the point's value (scaled number, bool, or mapped text)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        mapped = point.values.get(raw)
        if mapped is not None:
            return mapped
        try:
            raw = float(raw)
        except ValueError:
            raise CodecError(f"{point.name}: unexpected value {raw[:40]!r}") from None
    if not isinstance(raw, int | float):
        raise CodecError(f"{point.name}: expected a number, got {type(raw).__name__}")
    value = float(raw)
    if not math.isfinite(value):
        raise CodecError(f"{point.name}: {value} is not a finite number")
    if point.scale != 1.0 or point.offset != 0.0:
        # Round away float noise of the scaling (514.153 kWh → 514153.0 Wh, not …00006).
        value = round(value * point.scale + point.offset, 6)
    return value


def availability_state(spec: MqttAvailability, payload: bytes) -> bool:
    text = parse_text(payload)
    if spec.path:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = MISSING  # Zigbee2MQTT before 1.x sent a plain 'online'
        if doc is not MISSING:
            value = resolve(doc, spec.path)
            if value is MISSING:
                raise CodecError(f"availability field {spec.path!r} missing")
            text = str(value)
    if text == spec.online:
        return True
    if text == spec.offline:
        return False
    raise CodecError(f"availability payload {text[:40]!r} is neither online nor offline")


class DeviceCodec:
    """Decodes one device's messages; holds the last full status of overlaid topics."""

    def __init__(self, section: MqttSection, address: str) -> None:
        self.section = section
        self.address = address
        self._points: dict[str, list[MqttPoint]] = {}
        for p in section.points:
            self._points.setdefault(p.topic, []).append(p)
        self._specs: dict[str, MqttTopic] = {t.name: t for t in section.topics}
        # concrete topic → the spec names it carries (or AVAILABILITY)
        self.topics: dict[str, str] = {
            render_topic(t.topic, address): t.name for t in section.topics
        }
        if section.availability is not None:
            self.topics[render_topic(section.availability.topic, address)] = AVAILABILITY
        self._overlaid = {t.overlay for t in section.topics if t.overlay}
        self.state: dict[str, dict[str, Any]] = {}

    def decode(self, topic: str, payload: bytes, now: float) -> Decoded:
        """Raises CodecError for a message that does not fit at all."""
        name = self.topics.get(topic)
        if name is None:
            raise CodecError(f"topic {topic!r} is not one of this device's")
        if name == AVAILABILITY:
            assert self.section.availability is not None
            online = availability_state(self.section.availability, payload)
            return Decoded(
                tuple((p, online) for p in self._points.get(AVAILABILITY, ())), None, online
            )
        spec = self._specs[name]
        if spec.format == "text":
            text = parse_text(payload)
            values, bad = self._values(self._points.get(name, ()), text)
            return Decoded(values, None, None, bad)
        doc = parse_json(payload)
        for key, want in spec.match.items():
            got = resolve(doc, key)
            if got is MISSING or str(got) != want:
                return Decoded()  # another kind of message on this topic (e.g. NotifyEvent)
        obj = resolve(doc, spec.root)
        if obj is MISSING:
            return Decoded()  # e.g. a NotifyStatus about another component
        problems: list[str] = []
        ts = self._timestamp(spec, doc, now, problems)
        if spec.overlay is not None:
            if not isinstance(obj, dict):
                raise CodecError(f"{name}: partial update is not an object")
            self.state[spec.overlay] = deep_merge(self.state.get(spec.overlay, {}), obj)
            # Only the fields that changed are readings: re-stamping unchanged ones would claim
            # a measurement the device did not make.
            values, more = self._values(self._points.get(spec.overlay, ()), obj)
        else:
            if isinstance(obj, dict) and name in self._overlaid:
                self.state[name] = obj
            values, more = self._values(self._points.get(name, ()), obj)
        return Decoded(values, ts, None, (*problems, *more))

    def _timestamp(
        self, spec: MqttTopic, doc: Any, now: float, problems: list[str]
    ) -> float | None:
        if spec.timestamp is None:
            return None
        raw = resolve(doc, spec.timestamp)
        if raw is MISSING:
            return None
        try:
            ts = parse_timestamp(raw, spec.timestamp_format)
        except CodecError as exc:
            problems.append(str(exc))
            return None
        if ts > now + self.section.max_future_skew_s:
            problems.append(f"device time {ts:.0f} is ahead of the box by {ts - now:.0f} s")
            return None
        return ts

    @staticmethod
    def _values(
        points: Any, obj: Any
    ) -> tuple[tuple[tuple[MqttPoint, Value], ...], tuple[str, ...]]:
        out: list[tuple[MqttPoint, Value]] = []
        problems: list[str] = []
        for p in points:
            raw = resolve(obj, p.path)
            if raw is MISSING or raw is None:
                continue  # a field this message does not carry (exposes vary per device)
            try:
                out.append((p, convert(p, raw)))
            except CodecError as exc:
                problems.append(str(exc))
        return tuple(out), tuple(problems)
