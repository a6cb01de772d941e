"""Canonical bytes for everything signed: acks, enrolment, box requests, downlink documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def request_message(method: str, path: str, ts: str, body: bytes) -> bytes:
    return f"{method}\n{path}\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
