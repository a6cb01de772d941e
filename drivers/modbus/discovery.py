"""Find Modbus devices and guess their profile: scan unit ids, read each profile's registers,
score how many answer with values that make sense, and propose `[[devices]]` entries.

A fingerprint is a guess, not an identification: two controllers with overlapping register
maps can both answer. The proposal carries its score and the runners-up so an installer can
decide, and profiles stay `mapped_unverified` until someone checks them on site.

Presence: silence means nobody is there, and so do gateway exceptions 0A/0B (the gateway
answers for a unit it could not reach); any other exception response proves a device. Blocks
refused with exception 02 are split as the coordinator does, so a controller that refuses reads
across holes in its map still scores on the points it has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from drivers.errors import CodecError, DeviceIOError, DeviceRejected, ExceptionResponse
from drivers.modbus import spans
from drivers.modbus.backend import ModbusBackend
from drivers.modbus.codec import ReadBlock, decode_block, plan_reads
from drivers.modbus.coordinator import BusLock
from drivers.modbus.rtu import RtuBackend
from drivers.modbus.tcp import TcpBackend
from edge_agent.config.model import BusConfig
from firmware_profiles.loader import ProfileLibrary, load_library
from firmware_profiles.schema import BIT_TABLES, ModbusPoint, Profile

MIN_SCORE = 0.75
# Plausible ranges per kind; a kind not listed accepts any finite value.
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (-60, 150),
    "setpoint": (-50, 60),
    "humidity": (0, 100),
    "voltage": (80, 300),
    "current": (0, 200),
    "power": (-100_000, 100_000),
    "frequency": (45, 65),
    "power_factor": (-1, 1),
    "energy": (0, 1e8),
}
# A register reading exactly 0 proves little for these (unused space often reads 0).
_WEAK_ZERO = frozenset({"temperature", "setpoint", "voltage", "frequency"})


@dataclass(frozen=True, slots=True)
class Match:
    profile: str
    score: float
    points: int


def point_score(point: ModbusPoint, value: float | int | bool) -> float:
    """1 for a plausible value, 0.5 for a bare zero where zero is suspicious, 0 otherwise."""
    if point.table in BIT_TABLES:
        return 1.0
    v = float(value)
    if not math.isfinite(v):
        return 0.0
    lo, hi = _RANGES.get(point.kind, (-math.inf, math.inf))
    if not lo <= v <= hi:
        return 0.0
    if v == 0 and point.kind in _WEAK_ZERO:
        return 0.5
    return 1.0


async def _read(
    backend: ModbusBackend,
    lock: AbstractAsyncContextManager[None],
    table: str,
    start: int,
    count: int,
    unit: int,
) -> list[int]:
    async with lock:
        return await backend.read(table, start, count, unit)


async def score_profile(
    backend: ModbusBackend, unit: int, profile: Profile, lock: BusLock | None = None
) -> float:
    """The share of the profile's points that answer with plausible values (0..1)."""
    section = profile.modbus
    assert section is not None
    total = 0.0

    async def read(block: ReadBlock) -> list[int]:
        return await _read(
            backend, lock or nullcontext(), block.table, block.start, block.count, unit
        )

    for block in plan_reads(section):
        try:
            learnt = await spans.read_splitting(read, block)
        except (DeviceRejected, DeviceIOError):
            continue
        for sub, values in learnt.answered:
            try:
                decoded = decode_block(sub, values, section.byte_order, section.word_order)
            except CodecError:
                continue
            total += sum(point_score(p, v) for p, v in decoded)
    return total / len(section.points)


async def fingerprint(
    backend: ModbusBackend, unit: int, profiles: list[Profile], lock: BusLock | None = None
) -> list[Match] | None:
    """Matches for one unit, best first; None when nothing answers at that unit id."""
    assert profiles and profiles[0].modbus is not None
    probe = plan_reads(profiles[0].modbus)[0]
    try:
        await _read(backend, lock or nullcontext(), probe.table, probe.start, probe.count, unit)
    except DeviceIOError:
        return None  # silence: nobody there (an exception response still proves presence)
    except ExceptionResponse as exc:
        if exc.from_gateway:
            return None  # the gateway speaking for a unit it could not reach
    except DeviceRejected:
        pass
    matches = []
    for p in profiles:
        assert p.modbus is not None
        score = await score_profile(backend, unit, p, lock)
        matches.append(Match(p.id, round(score, 3), len(p.modbus.points)))
    matches.sort(key=lambda m: (-m.score, -m.points, m.profile))
    return matches


def modbus_profiles(library: ProfileLibrary | None = None) -> list[Profile]:
    lib = library or load_library()
    return sorted((p for p in lib if p.modbus is not None), key=lambda p: p.id)


def _proposal(unit: int, matches: list[Match], where: dict[str, Any]) -> dict[str, Any]:
    best = matches[0] if matches and matches[0].score >= MIN_SCORE else None
    entry: dict[str, Any] = {
        "unit_id": unit,
        "profile": best.profile if best else None,
        "score": best.score if best else 0.0,
        "candidates": [{"profile": m.profile, "score": m.score} for m in matches[:3]],
        **where,
    }
    entry["id"] = f"{best.profile if best else 'unknown'}-{unit}"
    lines = ["[[devices]]", f'id = "{entry["id"]}"', f'profile = "{entry["profile"] or "?"}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in where.items()]
    lines.append(f"unit_id = {unit}")
    entry["toml"] = "\n".join(lines) + "\n"
    return entry


async def scan(
    backend: ModbusBackend,
    unit_ids: Iterable[int],
    where: dict[str, Any],
    *,
    library: ProfileLibrary | None = None,
    lock: BusLock | None = None,
) -> list[dict[str, Any]]:
    profiles = modbus_profiles(library)
    found = []
    await backend.connect()
    try:
        for unit in unit_ids:
            matches = await fingerprint(backend, unit, profiles, lock)
            if matches is not None:
                found.append(_proposal(unit, matches, where))
    finally:
        backend.close()
    return found


async def discover_tcp(
    host: str,
    port: int,
    unit_ids: Iterable[int],
    *,
    timeout_s: float = 0.3,
    library: ProfileLibrary | None = None,
) -> list[dict[str, Any]]:
    """Scan a Modbus TCP endpoint (a device or a gateway) for the given unit ids."""
    backend = TcpBackend(host, port, timeout_s)
    return await scan(backend, unit_ids, {"host": host, "port": port}, library=library)


async def discover_rtu(
    bus: BusConfig,
    unit_ids: Iterable[int],
    *,
    timeout_s: float | None = None,
    library: ProfileLibrary | None = None,
) -> list[dict[str, Any]]:
    """Scan an RS-485 line; every absent unit costs one timeout, so keep the range small."""
    backend = RtuBackend(
        bus.port,
        bus.baudrate,
        bus.parity,
        bus.stopbits,
        bus.bytesize,
        timeout_s if timeout_s is not None else bus.timeout_s,
    )
    lock = BusLock(bus.gap_s)
    return await scan(backend, unit_ids, {"bus": bus.id}, library=library, lock=lock)
