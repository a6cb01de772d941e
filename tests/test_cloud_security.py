"""The cloud refuses, and logs as security events: unknown boxes, tampered / wrong-key /
replayed envelopes, a box writing outside its venue, used and expired claim codes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from cloud_sync import crypto
from cloud_sync.enrol import enrol
from cloud_sync.envelope import SyncRecord, seal
from cloud_sync.errors import EnrolmentError
from cloud_sync.identity import BoxIdentity, new_identity
from tests.peers.cloud import ADMIN, TENANT, VENUE, CloudServer, cloud, enrolled_box, start_cloud  # noqa: F401 - cloud is a fixture


def envelope(
    ident: BoxIdentity, seq: int = 1, venue: str | None = None, key: bytes | None = None
) -> bytes:
    rec = SyncRecord("events", seq, 1.0, {"type": "event", "kind": "x"})
    _, blob = seal(
        ident.box_id,
        venue or ident.venue,
        ident.kid,
        key or ident.key(ident.kid, crypto.UPLINK),
        [rec],
        2.0,
    )
    return blob


async def post(cloud: CloudServer, blob: bytes) -> int:
    async with aiohttp.ClientSession() as s, s.post(cloud.url + "/v1/ingest", data=blob) as r:
        return r.status


async def security_kinds(cloud: CloudServer) -> list[str]:
    got = await cloud.get("/v1/security-events")
    assert isinstance(got, list)
    # Repeats from one source within a minute are one row with a count.
    return [e["kind"] for e in got for _ in range(e["count"])]


async def test_good_envelope_then_replay_refused(tmp_path: Path, cloud: CloudServer) -> None:
    ident, _ = await enrolled_box(cloud, tmp_path)
    blob = envelope(ident)
    assert await post(cloud, blob) == 200
    assert await post(cloud, blob) == 409
    assert await security_kinds(cloud) == ["replay"]


async def test_tampered_wrong_key_unknown_box_and_wrong_venue(
    tmp_path: Path, cloud: CloudServer
) -> None:
    ident, _ = await enrolled_box(cloud, tmp_path)
    blob = bytearray(envelope(ident))
    blob[-5] ^= 0x01
    assert await post(cloud, bytes(blob)) == 401
    assert await post(cloud, envelope(ident, key=b"k" * 32)) == 401
    stranger = replace(
        new_identity(VENUE, cloud.url),
        cloud_sign_pub=ident.cloud_sign_pub,
        cloud_kx_pub=ident.cloud_kx_pub,
    )
    assert await post(cloud, envelope(stranger)) == 403
    assert cloud.store is not None
    cloud.store.ensure_venue(TENANT, "the-other-pub")
    assert await post(cloud, envelope(ident, venue="the-other-pub")) == 403
    # A header edited to another venue fails authentication before anything else.
    assert await post(cloud, b"garbage") == 400
    kinds = await security_kinds(cloud)
    assert sorted(kinds) == sorted(
        ["auth_failed", "auth_failed", "unknown_box", "venue_mismatch", "malformed_envelope"]
    )
    readings = await cloud.get(f"/v1/venues/{VENUE}/events")
    assert readings == []


async def test_claim_codes_are_one_time_and_expire(tmp_path: Path, cloud: CloudServer) -> None:
    assert cloud.store is not None
    code = cloud.store.create_claim(TENANT, VENUE)
    async with aiohttp.ClientSession() as s:
        await enrol(s, new_identity(VENUE, cloud.url), code)
        with pytest.raises(EnrolmentError, match="already used"):
            await enrol(s, new_identity(VENUE, cloud.url), code)
        expired = cloud.store.create_claim(TENANT, VENUE, ttl_s=-1)
        with pytest.raises(EnrolmentError, match="expired"):
            await enrol(s, new_identity(VENUE, cloud.url), expired)
        other = cloud.store.create_claim(TENANT, VENUE)
        with pytest.raises(EnrolmentError, match="for venue"):
            await enrol(s, new_identity("elsewhere", cloud.url), other)
        with pytest.raises(EnrolmentError, match="unknown"):
            await enrol(s, new_identity(VENUE, cloud.url), "NOPE-NOPE-NOPE-NOPE")


async def test_admin_endpoints_need_the_token_and_openapi_covers_every_route(
    cloud: CloudServer,
) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(cloud.url + "/v1/fleet") as r:
            assert r.status == 401
        async with s.get(cloud.url + "/openapi.json") as r:
            spec = await r.json()
        async with s.post(
            cloud.url + "/v1/claims",
            json={"tenant": TENANT, "venue": VENUE},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as r:
            assert r.status == 201 and len((await r.json())["claim"]) == 19
    assert cloud.runner is not None
    routes = {
        (res.method.lower(), res.resource.canonical)
        for res in cloud.runner.app.router.routes()
        if res.resource is not None and res.method != "HEAD"
    }
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == documented
