"""`beerflow-edge discover`: gather device proposals from each transport's discovery helper and
merge them into a venue config without touching anything an installer already wrote.

A proposal is a dict of `[[devices]]` keys (id, profile, and the transport's addressing), plus
optional `bus`/`broker` definitions it needs (`_bus`, `_broker` keys holding a table).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from typing import Any

ADDRESS_KEYS = ("host", "port", "unit_id", "bus", "address", "broker")


def _identity(dev: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two entries the same physical device, whatever they are called."""
    return tuple(dev.get(k) for k in ADDRESS_KEYS)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def _block(header: str, table: dict[str, Any]) -> str:
    lines = [f"[[{header}]]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def _unique_id(wanted: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9._-]+", "-", wanted.lower()).strip("-._") or "device"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def merge_proposals(config_text: str, proposals: Iterable[dict[str, Any]]) -> tuple[str, list[str]]:
    """Return the new config text and a line per device added.

    Existing devices are matched by address, never by name: a device the installer already
    configured (and perhaps renamed) is left exactly as it is. New ones are appended with ids
    that do not collide. Buses and brokers a proposal needs are added only if missing.
    """
    data = tomllib.loads(config_text) if config_text.strip() else {}
    devices = data.get("devices", [])
    known = {_identity(d) for d in devices}
    ids = {d.get("id") for d in devices}
    bus_ids = {b.get("id") for b in data.get("buses", [])}
    broker_ids = {b.get("id") for b in data.get("brokers", [])}
    additions: list[str] = []
    added: list[str] = []
    for proposal in proposals:
        p = dict(proposal)
        bus = p.pop("_bus", None)
        broker = p.pop("_broker", None)
        if _identity(p) in known:
            continue
        if bus and bus.get("id") not in bus_ids:
            additions.append(_block("buses", bus))
            bus_ids.add(bus.get("id"))
        if broker and broker.get("id") not in broker_ids:
            additions.append(_block("brokers", broker))
            broker_ids.add(broker.get("id"))
        p["id"] = _unique_id(str(p.get("id") or p.get("profile") or "device"), ids)
        ids.add(p["id"])
        known.add(_identity(p))
        ordered = {"id": p.pop("id"), "profile": p.pop("profile", None), **p}
        additions.append(_block("devices", ordered))
        added.append(f"{ordered['id']} ({ordered['profile']})")
    if not additions:
        return config_text, []
    text = (
        config_text.rstrip("\n")
        + "\n\n# Proposed by `beerflow-edge discover`: check names, labels and zones.\n"
    )
    return text + "\n".join(additions), added
