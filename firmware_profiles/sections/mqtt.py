"""The MQTT section of a profile: topics a device publishes, JSON fields mapped to points,
availability (LWT) and typed commands.

Topic patterns name the device with `{device}` (the device's `address` in the venue config)
and, for replies addressed to the box, `{client}` (the box's client id on that broker). A
`{device}` must fill whole topic levels, so a pattern is also a subscription filter with `+`.
Field paths are dotted (`ENERGY.Total`, `aenergy.total`, `Power.0` for the first element of a
list); the empty path means the whole payload (a plain `ON` or `23.5`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from edge_agent.toml_lines import Path
from edge_agent.typed_toml import Decoder
from firmware_profiles.checks import unique_names
from firmware_profiles.common import IDENT, IDENT_HINT, PointKind

AVAILABILITY = "availability"  # the reserved topic name of the availability (LWT) topic
TimestampFormat = Literal["unix", "unix_ms", "iso8601"]
ArgType = Literal["bool", "int", "float", "choice"]
_PLACEHOLDER = re.compile(r"\{([a-z]+)\}")
_TEMPLATE_VAR = re.compile(r"\$(?:\{([a-z_][a-z0-9_]*)\}|([a-z_][a-z0-9_]*))")


def _check_pattern(pattern: str, allowed: frozenset[str]) -> None:
    if not pattern or pattern.startswith("/"):
        raise ValueError(f"topic pattern {pattern!r} must be non-empty and not start with '/'")
    if "#" in pattern or "+" in pattern:
        raise ValueError("a topic pattern has no MQTT wildcards; use {device}")
    for name in _PLACEHOLDER.findall(pattern):
        if name not in allowed:
            raise ValueError(
                f"unknown placeholder {{{name}}} (allowed: {', '.join(sorted(allowed))})"
            )
    for level in pattern.split("/"):
        if _PLACEHOLDER.search(level) and not _PLACEHOLDER.fullmatch(level):
            raise ValueError(f"a placeholder must fill a whole topic level (got {level!r})")


@dataclass(frozen=True, slots=True)
class MqttTopic:
    """A topic the device publishes data on."""

    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    topic: str
    format: Literal["json", "text"] = "json"
    # Only messages whose fields equal these are data (Shelly's events topic carries
    # NotifyStatus and NotifyEvent alike).
    match: dict[str, str] = field(default_factory=dict)
    # The object inside the message that holds the point fields (paths are relative to it).
    root: str = ""
    # A field with the device's own time of measurement (path from the message's top).
    timestamp: str | None = None
    timestamp_format: TimestampFormat = "unix"
    # Partial updates: merge this topic's object onto the last full one of the named topic.
    overlay: str | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.topic, frozenset({"device"}))
        if "{device}" not in self.topic:
            raise ValueError("a data topic needs {device} so each device has its own")
        if self.format == "text" and (self.match or self.root or self.timestamp):
            raise ValueError("a text topic has no fields: match, root and timestamp need json")


@dataclass(frozen=True, slots=True)
class MqttAvailability:
    """The device's online/offline topic, normally its MQTT last will (LWT), retained."""

    topic: str
    path: str = ""  # empty: the whole payload (Shelly 'true', Tasmota 'Online')
    online: str = "online"
    offline: str = "offline"

    def __post_init__(self) -> None:
        _check_pattern(self.topic, frozenset({"device"}))
        if "{device}" not in self.topic:
            raise ValueError("the availability topic needs {device}")
        if self.online == self.offline:
            raise ValueError("online and offline payloads must differ")


@dataclass(frozen=True, slots=True)
class MqttPoint:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    kind: PointKind
    unit: str = ""
    # The name of a [[mqtt.topics]] entry, or "availability" (value: online true/false).
    topic: str = ""
    path: str = ""
    scale: float = 1.0
    offset: float = 0.0
    # Text values (e.g. "ON"/"OFF") to numbers; JSON booleans become true/false themselves.
    values: dict[str, float] = field(default_factory=dict)
    description: str = ""

    @property
    def where(self) -> str:
        scale = f" x{self.scale:g}" if self.scale != 1 else ""
        return f"{self.topic}:{self.path or '<payload>'}{scale}"


@dataclass(frozen=True, slots=True)
class MqttArg:
    """One typed, range-checked argument of a command, and how it is written in the payload."""

    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    type: ArgType
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    true_text: str = "true"
    false_text: str = "false"

    def __post_init__(self) -> None:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice argument needs 'choices'")
        if self.type != "choice" and self.choices:
            raise ValueError("'choices' is only for a choice argument")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if self.type in ("bool", "choice") and (self.min is not None or self.max is not None):
            raise ValueError(f"a {self.type} argument has no min/max")


@dataclass(frozen=True, slots=True)
class MqttCommand:
    """Publish a rendered payload to a topic; optionally wait for the device's reply.

    The payload template uses `$arg` for each argument, and `$rpc_id`/`$src` for JSON-RPC
    (Shelly): a fresh request id, and the box's client id to which the device replies.
    """

    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    topic: str
    payload: str
    args: tuple[MqttArg, ...] = ()
    retain: bool = False
    reply_topic: str | None = None
    # The reply carries `id` == $rpc_id (JSON-RPC); others are matched by the fields below.
    rpc: bool = False
    reply_path: str = ""  # the reply's value (becomes the command result's value)
    expect: str | None = None  # template the reply value must equal, e.g. "$on"
    error_path: str | None = None  # a reply with this field is a refusal (its text the reason)
    timeout_s: float = field(default=5.0, metadata={"min": 0.1, "max": 60})
    description: str = ""

    def __post_init__(self) -> None:
        _check_pattern(self.topic, frozenset({"device"}))
        if self.reply_topic is not None:
            _check_pattern(self.reply_topic, frozenset({"device", "client"}))
        elif self.rpc or self.expect is not None or self.reply_path:
            raise ValueError("rpc, reply_path and expect need a reply_topic")
        names = {a.name for a in self.args}
        for m in _TEMPLATE_VAR.finditer(self.payload + (self.expect or "")):
            var = m.group(1) or m.group(2)
            if var in ("rpc_id", "src"):
                if not self.rpc:
                    raise ValueError(f"${var} is only for rpc commands")
            elif var not in names:
                raise ValueError(f"template uses ${var}, which is not an argument")


@dataclass(frozen=True, slots=True)
class MqttSection:
    points: tuple[MqttPoint, ...] = field(metadata={"nonempty": True})
    topics: tuple[MqttTopic, ...] = field(metadata={"nonempty": True})
    availability: MqttAvailability | None = None
    commands: tuple[MqttCommand, ...] = ()
    qos: int = field(default=1, metadata={"min": 0, "max": 2})
    # A device time further ahead of the box's clock than this is not trusted.
    max_future_skew_s: float = field(default=300.0, metadata={"min": 0, "max": 86400})
    # Nor one further behind (a clock that never synced, a status years old): the reading is
    # stamped on arrival and the device's time kept beside it (point `device_time`). Raise it
    # for a device that uploads what it buffered while offline.
    max_past_skew_s: float = field(default=300.0, metadata={"min": 0, "max": 30 * 86400})

    def topic(self, name: str) -> MqttTopic | None:
        return next((t for t in self.topics if t.name == name), None)


def check_section(section: MqttSection, dec: Decoder, path: Path) -> None:
    """Cross-field checks: unique names, points on defined topics, overlays that resolve."""
    unique_names(section.points, dec, (*path, "points"))
    topics: dict[str, MqttTopic] = {}
    for i, t in enumerate(section.topics):
        if t.name == AVAILABILITY:
            dec.error((*path, "topics", i, "name"), f"{AVAILABILITY!r} is reserved")
        if t.name in topics:
            dec.error((*path, "topics", i, "name"), f"duplicate topic name {t.name!r}")
        topics.setdefault(t.name, t)
    patterns: dict[str, str] = {}
    for i, t in enumerate(section.topics):
        if t.topic in patterns and t.overlay is None:
            dec.error((*path, "topics", i, "topic"), f"same topic as {patterns[t.topic]!r}")
        patterns.setdefault(t.topic, t.name)
        if t.overlay is not None:
            base = topics.get(t.overlay)
            if base is None or base is t:
                dec.error((*path, "topics", i, "overlay"), f"no other topic named {t.overlay!r}")
            elif base.overlay is not None:
                dec.error((*path, "topics", i, "overlay"), "overlays do not chain")
            elif base.format != "json" or t.format != "json":
                dec.error((*path, "topics", i, "overlay"), "only json topics can overlay")
    overlaid = {t.overlay for t in section.topics if t.overlay}
    for i, p in enumerate(section.points):
        where = (*path, "points", i)
        if p.topic == AVAILABILITY:
            if section.availability is None:
                dec.error((*where, "topic"), "no [mqtt.availability] for this point")
            continue
        spec = topics.get(p.topic)
        if spec is None:
            known = ", ".join(sorted(topics)) or "none"
            dec.error((*where, "topic"), f"no topic named {p.topic!r} (topics: {known})")
        elif spec.overlay is not None:
            dec.error((*where, "topic"), f"name the full topic {spec.overlay!r}, not its overlay")
        elif spec.format == "text" and p.path:
            dec.error((*where, "path"), "a text topic has no fields; leave path empty")
        elif spec.format == "json" and not p.path and not spec.root and p.topic not in overlaid:
            dec.error((*where, "path"), "a json point needs a path")
    names: set[str] = set()
    for i, c in enumerate(section.commands):
        if c.name in names:
            dec.error((*path, "commands", i, "name"), f"duplicate command {c.name!r}")
        names.add(c.name)
