"""The terminal's exception root."""

from __future__ import annotations

from edge_agent.errors import EdgeError


class TerminalError(EdgeError):
    """Root of the terminal's errors."""
