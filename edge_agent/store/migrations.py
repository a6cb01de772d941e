"""One linear sequence of schema migrations, each tagged with the area that owns it.

A store's version is PRAGMA user_version, and `migrate` applies every migration above it, in
order. So a migration numbered at or below a version already shipped would be skipped on every
deployed box: the sequence refuses one that is not above the migration before it, and the
shipped versions are pinned by a test. Areas add migrations at the end, numbered one above the
last.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_agent.errors import StoreError


@dataclass(frozen=True)
class Migration:
    version: int
    area: str
    description: str
    apply: Callable[[sqlite3.Connection], None]


def statements(*sql: str) -> Callable[[sqlite3.Connection], None]:
    """A migration made of plain SQL statements, run in order inside its transaction."""

    def apply(conn: sqlite3.Connection) -> None:
        for s in sql:
            conn.execute(s)

    return apply


def linear(migrations: Iterable[Migration]) -> tuple[Migration, ...]:
    """The sequence as registered, refusing any migration not numbered above the one before."""
    seq: list[Migration] = []
    for m in migrations:
        if m.version < 1:
            raise StoreError(
                f"migration {m.version} ({m.area}: {m.description}): versions start at 1"
            )
        if seq and m.version <= seq[-1].version:
            raise StoreError(
                f"migration {m.version} ({m.area}: {m.description}) is registered after "
                f"{seq[-1].version}: the sequence is linear, number it {seq[-1].version + 1}"
            )
        seq.append(m)
    return tuple(seq)
