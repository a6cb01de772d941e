"""Schema migrations owned by the rules area (versions 2, 20–29 reserved for it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.store.schema import Migration

MIGRATIONS: tuple[Migration, ...] = ()
