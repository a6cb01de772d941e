"""Each unit's description in the chain itself (label, type, point, limits, recording period,
suppression), recorded whenever it changes: the chain then explains itself, and a report made
from it alone (in the cloud, after the box is gone) can name units and their limits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from rules.haccp import chain
from rules.haccp.presets import unit_limits
from rules.model import Unit


def describe(u: Unit, region: str, timezone: str = "UTC") -> dict[str, Any]:
    lim = unit_limits(u, region)
    suppressed = [
        name
        for name, on in (
            ("defrost", bool(u.defrost_point)),
            ("door", bool(u.door_point)),
            ("start-up", u.power_up_s > 0),
        )
        if on
    ]
    return {
        "label": u.label or u.id,
        "type": u.kind,
        "device": u.device,
        "point": u.point,
        "max_c": lim.max_c if lim else u.max_c,
        "min_c": lim.min_c if lim else u.min_c,
        "delay_s": lim.delay_s if lim else u.delay_s,
        "record_every_s": u.record_every_s,
        "region": region,
        "timezone": timezone,
        "suppression": suppressed,
    }


def record_changes(
    conn: sqlite3.Connection,
    units: Sequence[Unit],
    region: str,
    now: float,
    timezone: str = "UTC",
) -> int:
    """Append a `unit_config` record for each unit whose description changed; in the caller's
    transaction. Returns how many were appended."""
    last: dict[str, dict[str, Any]] = {
        r.unit: r.data for r in chain.records(conn, kind="unit_config")
    }
    n = 0
    for u in units:
        d = describe(u, region, timezone)
        if last.get(u.id) != d:
            chain.append(conn, now, u.id, "unit_config", d)
            n += 1
    return n


def latest(records: Iterable[chain.HaccpRecord], before: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.kind == "unit_config" and r.ts < before:
            out[r.unit] = r.data
    return out
