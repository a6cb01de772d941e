"""The exception root of the runtime; library errors are translated to these at the boundary."""

from __future__ import annotations

from dataclasses import dataclass


class EdgeError(Exception):
    """Root of every error the runtime raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a config or profile file, located for the person who fixes it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ValidationError(EdgeError):
    """A file did not validate; carries every issue found, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in issues))


class StoreError(EdgeError):
    """The local store could not accept or read records."""


class BusClosed(EdgeError):
    """A message was published after the bus was shut down."""
