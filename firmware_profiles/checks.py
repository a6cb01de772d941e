"""Cross-field checks every transport's profile section shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from edge_agent.toml_lines import Path
from edge_agent.typed_toml import Decoder


class Named(Protocol):
    @property
    def name(self) -> str: ...


def unique_names(items: Sequence[Named], dec: Decoder, path: Path, what: str = "point") -> None:
    """Report every repeated name at its own line, pointing at the first one."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            listing = path[-1] if path else "items"
            dec.error(
                (*path, i, "name"),
                f"duplicate {what} name {item.name!r} (first at {listing}[{seen[item.name]}])",
            )
        seen.setdefault(item.name, i)
