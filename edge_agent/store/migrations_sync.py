"""Schema migrations owned by the sync area (versions 3, 30–39 reserved for it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.store.schema import Migration

MIGRATIONS: tuple[Migration, ...] = ()
