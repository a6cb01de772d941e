"""The rules area's exception root; a load error in a rule file is a ValidationError instead."""

from __future__ import annotations

from edge_agent.errors import EdgeError


class RulesError(EdgeError):
    """Root of the rules area's errors."""
