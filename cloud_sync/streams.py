"""Streams, their priorities and which records go where.

Critical streams (alarms, HACCP records, audit entries, events, loss records) are sent first
and never evicted; telemetry after; bulk raw data last and evicted first when the quota nears.
Other areas add streams by name with `register_stream` and route their own records with
`Outbox.append` from inside their own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_agent.messages import Event, Reading


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    priority: int  # lower goes first
    evictable: bool
    evict_order: int = 0  # lower is evicted first among evictable streams


STREAMS: dict[str, StreamSpec] = {}


def register_stream(spec: StreamSpec) -> None:
    STREAMS[spec.name] = spec


for _spec in (
    StreamSpec("alarms", 0, False),
    StreamSpec("haccp", 0, False),
    StreamSpec("audit", 0, False),
    StreamSpec("loss", 0, False),
    StreamSpec("events", 1, False),
    StreamSpec("telemetry", 5, True, evict_order=2),
    StreamSpec("bulk", 9, True, evict_order=1),
):
    register_stream(_spec)


def spec(stream: str) -> StreamSpec:
    # Unknown streams are treated as critical: a stream someone forgot to register must not
    # be silently evictable.
    return STREAMS.get(stream) or StreamSpec(stream, 1, False)


_EVENT_PREFIXES = (("alarm", "alarms"), ("haccp", "haccp"), ("audit", "audit"))


def default_route(record: Reading | Event) -> str:
    if type(record) is Reading:
        return "bulk" if record.point.startswith("raw.") else "telemetry"
    assert isinstance(record, Event)
    for prefix, stream in _EVENT_PREFIXES:
        if record.kind.startswith(prefix):
            return stream
    return "events"


Router = Callable[[Reading | Event], str]


def record_json(record: Reading | Event) -> bytes:
    """The record as the cloud stores it; compact, deterministic."""
    body: dict[str, Any]
    if type(record) is Reading:
        body = {
            "type": "reading",
            "device": record.device_id,
            "point": record.point,
            "value": record.value,
            "ts": record.ts,
            "unit": record.unit,
            "quality": int(record.quality),
        }
    else:
        assert isinstance(record, Event)
        body = {
            "type": "event",
            "kind": record.kind,
            "ts": record.ts,
            "source": record.source,
            "severity": int(record.severity),
            "message": record.message,
            "data": record.data,
        }
    return json.dumps(body, separators=(",", ":"), default=str).encode()
