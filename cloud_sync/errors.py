"""One exception root for the sync area."""

from __future__ import annotations

from edge_agent.errors import EdgeError


class SyncError(EdgeError):
    """Anything that went wrong on the box's side of sync."""


class EnvelopeError(SyncError):
    """An envelope or record that cannot be decoded or fails authentication."""


class EnrolmentError(SyncError):
    """Enrolment refused or impossible (used/expired claim code, cloud unreachable)."""


class DownlinkRejected(SyncError):
    """A downlinked document that is unsigned, wrongly signed, older or invalid."""
