"""The cloud API's error contract: every route answers anything with a 2xx or a 4xx, never a
5xx. Schemathesis generates cases from the OpenAPI document the cloud serves (a bounded number
here; `bench/api_fuzz.py` runs thousands); the inputs that once gave 500s are pinned below."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_api.app import ENROL_LIMITER
from cloud_api.openapi import OPENAPI
from cloud_sync import crypto
from cloud_sync.envelope import seal_records
from cloud_sync.identity import new_identity
from cloud_sync.signing import canonical
from tests.peers.api_fuzz import run_fuzz
from tests.peers.cloud import TENANT, VENUE
from tests.peers.cloud_thread import ThreadedCloud, threaded_cloud

PER_OPERATION = int(os.environ.get("BEERFLOW_API_CASES", "12"))


@pytest.fixture(scope="module")
def tc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedCloud]:
    with threaded_cloud(Path(tmp_path_factory.mktemp("cloud"))) as c:
        yield c


def fresh_enrol_tries(tc: ThreadedCloud) -> None:
    """The fuzzing before used up this source's enrolment tries; give them back."""
    assert tc.cloud.runner is not None
    tc.cloud.runner.app[ENROL_LIMITER]._buckets.clear()


def test_no_route_answers_a_server_error(tc: ThreadedCloud) -> None:
    result = run_fuzz(tc, PER_OPERATION)
    assert result.server_errors == []
    documented = {f"{m.upper()} {p}" for p, ops in OPENAPI["paths"].items() for m in ops}
    assert documented <= set(result.per_operation)  # every documented route was exercised


def test_once_failing_inputs_get_a_clear_4xx(tc: ThreadedCloud) -> None:
    fresh_enrol_tries(tc)
    box = f"/v1/boxes/{tc.box.box_id}"
    for body in (b"\xff\xfe", b"[" * 1000, b"{", b"[1]", b'{"config_version":"abc"}'):
        r = tc.signed("POST", box + "/status", body)
        assert r.status_code == 400 and "error" in r.json(), (body, r.text)
        r = tc.signed("POST", box + "/reports", body.replace(b"config_version", b"version"))
        assert r.status_code == 400, (body, r.text)
    r = tc.admin("POST", "/v1/enrol", data=b"\xff\xfe")
    assert r.status_code == 400
    r = tc.admin("POST", "/v1/enrol", data=b"[" * 1000)
    assert r.status_code == 400
    for body in (b"not json", b'{"tenant":"t","venue":"v","ttl_s":"nan"}', b"[]"):
        r = tc.admin("POST", "/v1/claims", data=body)
        assert r.status_code == 400, (body, r.text)
    r = tc.admin("POST", "/v1/documents", data=b"{")
    assert r.status_code == 400
    for limit in ("inf", "nan", "1e9", "-"):
        r = tc.admin("GET", f"/v1/venues/{VENUE}/events?limit={limit}")
        assert r.status_code == 400, limit
    # The documented stream name answers.
    assert tc.admin("GET", f"/v1/venues/{VENUE}/events?stream=losses").status_code == 200


def test_a_seq_beyond_64_bits_is_malformed_not_an_overflow(tc: ThreadedCloud) -> None:
    ident = tc.box
    _, blob = seal_records(
        ident.box_id,
        ident.venue,
        ident.kid,
        ident.key(ident.kid, crypto.UPLINK),
        [("telemetry", 2**63, 1.0)],
        [b'{"type":"reading"}'],
        1.0,
    )
    r = tc.admin("POST", "/v1/ingest", data=blob)
    assert r.status_code in (400, 401) and "error" in r.json()


def test_re_enrolling_an_enrolled_key_with_a_new_claim_is_a_conflict(tc: ThreadedCloud) -> None:
    assert tc.cloud.store is not None
    fresh_enrol_tries(tc)
    code = tc.cloud.store.create_claim(TENANT, VENUE)
    ident = tc.box
    req = {
        "box_id": ident.box_id,
        "venue": ident.venue,
        "claim": code,
        "box_sign_pub": crypto.b64(ident.sign_pub),
        "box_kx_pub": crypto.b64(ident.kx_pub),
    }
    r = tc.admin(
        "POST",
        "/v1/enrol",
        data=json.dumps({**req, "sig": crypto.b64(ident.sign(canonical(req)))}),
    )
    assert r.status_code == 409 and "already enrolled" in r.json()["error"]
    # A different box still enrols with that claim: it was not used up.
    other = new_identity(VENUE, tc.url)
    req2 = {
        **req,
        "box_id": other.box_id,
        "box_sign_pub": crypto.b64(other.sign_pub),
        "box_kx_pub": crypto.b64(other.kx_pub),
    }
    r = tc.admin(
        "POST",
        "/v1/enrol",
        data=json.dumps({**req2, "sig": crypto.b64(other.sign(canonical(req2)))}),
    )
    assert r.status_code == 200, r.text


def test_enrolment_guessing_is_rate_limited_and_logged_once_per_window(tc: ThreadedCloud) -> None:
    assert tc.cloud.store is not None
    fresh_enrol_tries(tc)

    def counts(kind: str) -> int:
        assert tc.cloud.store is not None
        return sum(e["count"] for e in tc.cloud.store.security_log(10_000) if e["kind"] == kind)

    rows_before = len(tc.cloud.store.security_log(10_000))
    unknown, limited = counts("enrol_unknown_claim"), counts("enrol_rate_limited")
    other = new_identity(VENUE, tc.url)
    answers = []
    for i in range(25):
        req = {
            "box_id": other.box_id,
            "venue": VENUE,
            "claim": f"GUESS-{i:04d}",
            "box_sign_pub": crypto.b64(other.sign_pub),
            "box_kx_pub": crypto.b64(other.kx_pub),
        }
        r = tc.admin(
            "POST",
            "/v1/enrol",
            data=json.dumps({**req, "sig": crypto.b64(other.sign(canonical(req)))}),
        )
        answers.append((r.status_code, r.headers.get("Retry-After")))
    assert [s for s, _ in answers[:10]] == [403] * 10  # unknown claims, checked
    assert all(s == 429 and ra is not None and int(ra) >= 1 for s, ra in answers[10:])
    assert counts("enrol_unknown_claim") == unknown + 10
    assert counts("enrol_rate_limited") == limited + 15
    # 25 refusals, at most one new row per kind and source in the window
    assert len(tc.cloud.store.security_log(10_000)) <= rows_before + 2
