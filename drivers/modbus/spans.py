"""What a device has taught us about its register map: which reads it answers.

Many controllers answer exception 02 (illegal data address) when one read covers an address
their map leaves undefined, even though every point it contains exists. The planner merges
points across small holes (`max_gap`) to save round trips, so such a device would refuse a
whole block. The coordinator then splits the block between its points, halving until each
piece is answered or is a single point; what it learns is a per-device plan kept here, stored
next to the database so a restart does not learn it again.

Pure: blocks in, blocks out; the file I/O is `load_plan`/`save_plan`, atomic and private.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from drivers.errors import CodecError, ExceptionResponse
from drivers.modbus import frames
from drivers.modbus.codec import ReadBlock
from firmware_profiles.schema import ModbusPoint

PLAN_VERSION = 1


def block_of(points: Sequence[ModbusPoint]) -> ReadBlock:
    """The smallest read covering `points` (all of one table)."""
    pts = tuple(sorted(points, key=lambda p: p.address))
    start = pts[0].address
    end = max(p.address + p.width for p in pts)
    return ReadBlock(pts[0].table, start, end - start, pts)


def split(block: ReadBlock) -> tuple[ReadBlock, ReadBlock] | None:
    """Two halves of a refused block, cut between points at its widest hole (the likeliest
    undefined span); None for a single point, which cannot be split further."""
    pts = sorted(block.points, key=lambda p: p.address)
    if len(pts) < 2:
        return None
    # the cut after point i; prefer the largest hole, then the most even halves
    best = max(
        range(1, len(pts)),
        key=lambda i: (
            pts[i].address - (pts[i - 1].address + pts[i - 1].width),
            -abs(len(pts) - 2 * i),
        ),
    )
    return block_of(pts[:best]), block_of(pts[best:])


@dataclass(frozen=True, slots=True)
class Learnt:
    """The outcome of reading one block, split as far as the device needed."""

    answered: tuple[tuple[ReadBlock, list[int]], ...]
    refused: tuple[ModbusPoint, ...]  # points refused even when read alone

    @property
    def split(self) -> bool:
        return len(self.answered) != 1 or bool(self.refused)


async def read_splitting(
    read: Callable[[ReadBlock], Awaitable[list[int]]], block: ReadBlock
) -> Learnt:
    """Read `block`; on exception 02 split it and read the halves, recursively.

    Any other error (a timeout, another exception code) goes up unchanged: only 02 says the
    read's span, rather than the device or the line, is the problem."""
    try:
        return Learnt(((block, await read(block)),), ())
    except ExceptionResponse as exc:
        if exc.code != frames.EXC_ILLEGAL_ADDRESS:
            raise
    halves = split(block)
    if halves is None:
        return Learnt((), block.points)
    left = await read_splitting(read, halves[0])
    right = await read_splitting(read, halves[1])
    return Learnt(left.answered + right.answered, left.refused + right.refused)


def fingerprint(points: Sequence[ModbusPoint]) -> str:
    """Identifies the point set a plan was learnt for: a changed profile discards the plan."""
    h = hashlib.sha256()
    for p in sorted(points, key=lambda p: (p.table, p.address, p.name)):
        h.update(f"{p.table}:{p.address}:{p.width}:{p.name};".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LearntPlan:
    """Blocks the device answers, and points it refuses even on their own."""

    blocks: tuple[ReadBlock, ...]
    unreadable: tuple[str, ...] = ()


def encode_plan(plan: LearntPlan, points: Sequence[ModbusPoint]) -> bytes:
    doc = {
        "version": PLAN_VERSION,
        "points": fingerprint(points),
        "blocks": [[b.table, [p.name for p in b.points]] for b in plan.blocks],
        "unreadable": list(plan.unreadable),
    }
    return json.dumps(doc, sort_keys=True).encode()


def decode_plan(data: bytes, points: Sequence[ModbusPoint]) -> LearntPlan | None:
    """The plan stored in `data`, or None when it was learnt for another point set.

    CodecError when the data is not a plan (a damaged file is reported, then relearnt)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"learnt plan is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != PLAN_VERSION:
        raise CodecError("learnt plan has no known version")
    if doc.get("points") != fingerprint(points):
        return None
    by_name = {p.name: p for p in points}
    blocks: list[ReadBlock] = []
    seen: set[str] = set()
    raw_blocks, unreadable = doc.get("blocks"), doc.get("unreadable")
    if not isinstance(raw_blocks, list) or not isinstance(unreadable, list):
        raise CodecError("learnt plan lacks blocks or unreadable points")
    for entry in raw_blocks:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise CodecError(f"learnt plan block {entry!r} is not [table, [points]]")
        names = entry[1]
        if not names or not all(isinstance(n, str) and n in by_name for n in names):
            raise CodecError(f"learnt plan block {entry!r} names unknown points")
        pts = [by_name[n] for n in names]
        if len({p.table for p in pts}) != 1 or pts[0].table != entry[0]:
            raise CodecError(f"learnt plan block {entry!r} mixes tables")
        if seen & set(names):
            raise CodecError(f"learnt plan lists a point twice: {entry!r}")
        seen |= set(names)
        blocks.append(block_of(pts))
    if not all(isinstance(n, str) and n in by_name and n not in seen for n in unreadable):
        raise CodecError("learnt plan's unreadable points are not points of the profile")
    if seen | set(unreadable) != set(by_name):
        raise CodecError("learnt plan does not cover every point")
    return LearntPlan(tuple(blocks), tuple(sorted(unreadable)))


def load_plan(path: str, points: Sequence[ModbusPoint]) -> LearntPlan | None:
    """The stored plan, or None if there is none for this point set. CodecError if damaged."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 20)
    except FileNotFoundError:
        return None
    return decode_plan(data, points)


def save_plan(path: str, plan: LearntPlan, points: Sequence[ModbusPoint]) -> None:
    """Write atomically (a crash leaves the old plan or the new one), owner-only."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".plan-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(encode_plan(plan, points))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
