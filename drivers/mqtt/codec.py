"""The pure MQTT codec: (topic, payload bytes) of one device → typed values, per its profile.

No sockets, clocks or loggers here: the receive time comes in as `now`. A `DeviceCodec` keeps
the last full status of each topic that others overlay (Shelly's NotifyStatus carries only the
fields that changed), so a partial update is merged onto it before points are read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
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

try:  # several times faster than json; used when present (xiaomi-ble already pulls it in)
    import orjson

    _fast_loads: Callable[[bytes], Any] | None = orjson.loads
    _FastError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - depends on the installation
    _fast_loads, _FastError = None, ValueError

# A compiled dotted path: per level the dict key and, when the level is a number, the index.
Parts = tuple[tuple[str, int | None], ...]
_INT_EXACT = 2**53  # integers up to this convert to float exactly


@dataclass(frozen=True, slots=True)
class Decoded:
    values: tuple[tuple[MqttPoint, Value], ...] = ()
    ts: float | None = None  # the device's own time, when it sent one we trust
    online: bool | None = None  # set by an availability message
    problems: tuple[str, ...] = ()  # fields that did not fit (the rest still counts)
    skewed: float | None = None  # the device's time, when it is too far from the box's


def render_topic(pattern: str, device: str, client: str = "") -> str:
    return pattern.replace("{device}", device).replace("{client}", client)


def resolve(doc: Any, path: str) -> Any:
    """The value at a dotted path ('' is the whole document), list elements by index; MISSING
    when absent."""
    return walk(doc, compile_path(path))


def compile_path(path: str) -> Parts:
    if not path:
        return ()
    return tuple(
        (part, int(part) if part.isascii() and part.isdigit() else None) for part in path.split(".")
    )


def walk(doc: Any, parts: Parts) -> Any:
    """`resolve` with the path split once, ahead of time (it runs per point per message)."""
    cur = doc
    for key, index in parts:
        if isinstance(cur, dict):
            cur = cur.get(key, MISSING)
        elif index is not None and isinstance(cur, list) and index < len(cur):
            cur = cur[index]
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
    if _fast_loads is not None:
        try:
            return _fast_loads(payload)
        except _FastError:
            pass  # json decides: it also takes NaN/Infinity and huge integers, as before
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"not JSON: {payload[:40]!r}") from exc
    except RecursionError:
        # json nests on the C stack; a payload like '[' * 100000 exhausts it.
        raise CodecError(f"JSON nested too deeply: {payload[:40]!r}") from None


def parse_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CodecError(f"not UTF-8 text: {payload[:40]!r}") from exc


def parse_timestamp(raw: Any, fmt: TimestampFormat) -> float:
    if fmt == "iso8601":
        if not isinstance(raw, str):
            raise CodecError(f"timestamp {str(raw)[:40]} is not an ISO 8601 string")
        try:
            dt = datetime.fromisoformat(raw)
            # A time without a zone is taken as UTC: devices keep UTC unless told otherwise.
            ts = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError) as exc:  # OverflowError: year 1 minus an offset
            raise CodecError(f"timestamp {raw[:40]!r} is not ISO 8601") from exc
    else:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise CodecError(f"timestamp {str(raw)[:40]} is not a number")
        try:
            ts = raw / 1000 if fmt == "unix_ms" else float(raw)
        except OverflowError:  # an integer beyond any float (JSON allows it)
            raise CodecError(f"timestamp {str(raw)[:40]} is out of range") from None
    if not math.isfinite(ts) or ts <= 0:
        raise CodecError(f"timestamp {str(raw)[:40]} is out of range")
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
    try:
        value = float(raw)
    except OverflowError:  # an integer beyond any float (JSON allows it)
        raise CodecError(f"{point.name}: {str(raw)[:40]} is out of range") from None
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
            if not isinstance(value, str | bool | int | float):
                raise CodecError(f"availability field {spec.path!r} is not a scalar")
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
        # Paths split once here, not per message: topic name → its points with their paths.
        self._plans: dict[str, tuple[_PointPlan, ...]] = {
            name: tuple(_PointPlan(p, compile_path(p.path)) for p in points)
            for name, points in self._points.items()
        }
        self._match: dict[str, tuple[tuple[Parts, str], ...]] = {
            t.name: tuple((compile_path(k), v) for k, v in t.match.items()) for t in section.topics
        }
        self._root: dict[str, Parts] = {t.name: compile_path(t.root) for t in section.topics}
        # Topics whose message must be an object: a field of it is read by name.
        self._fields: dict[str, bool] = {
            t.name: any(
                _by_name(path)
                for path in (
                    t.root,
                    t.timestamp or "",
                    *t.match,
                    *(p.path for p in self._points.get(t.overlay or t.name, ())),
                )
            )
            for t in section.topics
        }
        self._ts_path: dict[str, Parts | None] = {
            t.name: None if t.timestamp is None else compile_path(t.timestamp)
            for t in section.topics
        }

    def decode(self, topic: str, payload: bytes, now: float) -> Decoded:
        """Raises CodecError for a message that does not fit at all, and nothing else."""
        try:
            return self._decode(topic, payload, now)
        except RecursionError:
            # Nesting that the parser took but the walk or the merge cannot: still the
            # payload's fault, not the driver's.
            raise CodecError(f"{topic}: payload nested too deeply") from None

    def _decode(self, topic: str, payload: bytes, now: float) -> Decoded:
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
            values, bad = self._values(self._plans.get(name, ()), text)
            return Decoded(values, None, None, bad)
        doc = parse_json(payload)
        for key, want in self._match[name]:
            got = walk(doc, key)
            if got is MISSING or str(got) != want:
                return Decoded()  # another kind of message on this topic (e.g. NotifyEvent)
        if type(doc) is not dict and self._fields[name]:
            # A bare number, string, list, NaN… where the profile reads fields of an object.
            raise CodecError(f"{name}: expected a JSON object, got {type(doc).__name__}")
        obj = walk(doc, self._root[name])
        if obj is MISSING:
            return Decoded()  # e.g. a NotifyStatus about another component
        problems: list[str] = []
        ts = self._timestamp(spec, self._ts_path[name], doc, problems)
        skewed = None
        if ts is not None and not (
            now - self.section.max_past_skew_s <= ts <= now + self.section.max_future_skew_s
        ):
            skewed, ts = ts, None
        if spec.overlay is not None:
            if not isinstance(obj, dict):
                raise CodecError(f"{name}: partial update is not an object")
            self.state[spec.overlay] = deep_merge(self.state.get(spec.overlay, {}), obj)
            # Only the fields that changed are readings: re-stamping unchanged ones would claim
            # a measurement the device did not make.
            values, more = self._values(self._plans.get(spec.overlay, ()), obj)
        else:
            if isinstance(obj, dict) and name in self._overlaid:
                self.state[name] = obj
            values, more = self._values(self._plans.get(name, ()), obj)
        return Decoded(values, ts, None, (*problems, *more), skewed)

    def _timestamp(
        self, spec: MqttTopic, path: Parts | None, doc: Any, problems: list[str]
    ) -> float | None:
        if path is None:
            return None
        raw = walk(doc, path)
        if raw is MISSING:
            return None
        try:
            return parse_timestamp(raw, spec.timestamp_format)
        except CodecError as exc:
            problems.append(str(exc))
            return None

    @staticmethod
    def _values(
        plans: tuple[_PointPlan, ...], obj: Any
    ) -> tuple[tuple[tuple[MqttPoint, Value], ...], tuple[str, ...]]:
        out: list[tuple[MqttPoint, Value]] = []
        problems: list[str] = []
        top = obj if type(obj) is dict else None
        for plan in plans:
            if plan.key is not None and top is not None:
                raw = top.get(plan.key)  # a top-level field: most points of most profiles
            else:
                raw = walk(obj, plan.parts)
            if raw is MISSING or raw is None:
                continue  # a field this message does not carry (exposes vary per device)
            if plan.plain:
                # The common cases, with what convert() would return for them.
                kind = type(raw)
                if kind is float and math.isfinite(raw):
                    out.append((plan.point, raw))
                    continue
                if kind is int and -_INT_EXACT <= raw <= _INT_EXACT:
                    out.append((plan.point, float(raw)))
                    continue
            try:
                out.append((plan.point, convert(plan.point, raw)))
            except CodecError as exc:
                problems.append(str(exc))
        return tuple(out), tuple(problems)


def _by_name(path: str) -> bool:
    first = path.split(".", 1)[0]
    return bool(first) and not (first.isascii() and first.isdigit())


class _PointPlan:
    __slots__ = ("key", "parts", "plain", "point")

    def __init__(self, point: MqttPoint, parts: Parts) -> None:
        self.point = point
        self.parts = parts
        self.key = parts[0][0] if len(parts) == 1 else None
        self.plain = point.scale == 1.0 and point.offset == 0.0
