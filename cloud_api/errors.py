"""The cloud service's exception root."""

from __future__ import annotations


class CloudError(Exception):
    """Root of the cloud service's errors."""
