"""Schemathesis against the cloud's own OpenAPI document: for every documented operation,
cases valid and invalid (negative mode) are sent as they are, and, for routes a box signs,
again signed by an enrolled box so the handler behind the signature check is reached too.
The contract: no answer is a 5xx."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from cloud_api.openapi import OPENAPI
from tests.peers.cloud import ADMIN
from tests.peers.cloud_thread import ThreadedCloud

HOSTILE_BODIES = (
    b"\xff\xfe\xfa",
    b"[" * 1000,
    b"{" * 5000,
    b"{",
    b"[1]",
    b'{"config_version":"abc"}',
    b'{"config_version":1e999}',
    b'{"version":99999999999999999999999}',
    b'{"ttl_s":"nan","tenant":"t","venue":"v"}',
    b'{"ttl_s":NaN,"tenant":"t","venue":"v"}',
    b"",
    b"null",
)


@dataclass
class FuzzResult:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


def _raw_body(case: Any) -> bytes:
    body = getattr(case, "body", None)
    if body is None or type(body).__name__ == "NotSet":
        return b""
    if isinstance(body, bytes):
        return body
    try:
        return json.dumps(body).encode()
    except (TypeError, ValueError):
        return str(body).encode()


def _fuzz_operation(
    tc: ThreadedCloud,
    op: Any,
    label: str,
    signed_route: bool,
    per_operation: int,
    session: requests.Session,
    note: Callable[[str, requests.Response, str], None],
) -> None:
    @settings(
        max_examples=per_operation,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(), admin=st.booleans())
    def one(case: Any, admin: bool) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"} if admin else {}
        r = case.call(base_url=tc.url, session=session, headers=headers, timeout=30)
        note(label, r, f"{case.path_parameters} {case.query!r} {_raw_body(case)[:80]!r}")
        if signed_route:
            path = op.path.replace("{box}", tc.box.box_id)
            r = tc.signed(op.method.upper(), path, _raw_body(case))
            note(label + " (signed)", r, repr(_raw_body(case)[:80]))

    one()


def run_fuzz(tc: ThreadedCloud, per_operation: int, seed: int = 1) -> FuzzResult:
    schema = schemathesis.openapi.from_dict(OPENAPI)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=per_operation
    )
    out = FuzzResult()
    session = requests.Session()

    def note(label: str, r: requests.Response, detail: str) -> None:
        out.cases += 1
        out.statuses[r.status_code] += 1
        out.per_operation[label] += 1
        if r.status_code >= 500:
            out.server_errors.append(f"{label} {detail}: {r.status_code} {r.text[:200]}")

    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        signed_route = op.definition.raw.get("x-auth") == "box"
        _fuzz_operation(tc, op, label, signed_route, per_operation, session, note)
        # The bodies the hypothesis-generated cases rarely reach, on every route that takes one.
        if op.method.upper() == "POST":
            for body in HOSTILE_BODIES:
                path = op.path.replace("{box}", tc.box.box_id)
                r = tc.admin("POST", path, data=body, headers={"Content-Type": "application/json"})
                note(label, r, repr(body[:40]))
                if signed_route:
                    note(label + " (signed)", tc.signed("POST", path, body), repr(body[:40]))
    session.close()
    return out
