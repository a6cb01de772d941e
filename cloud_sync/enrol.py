"""Enrolment: present the claim code and the box's public keys, pin the cloud's keys."""

from __future__ import annotations

import aiohttp

from cloud_sync import crypto
from cloud_sync.errors import EnrolmentError
from cloud_sync.identity import BoxIdentity, enrolled_copy
from cloud_sync.signing import canonical


async def enrol(
    session: aiohttp.ClientSession, ident: BoxIdentity, claim: str, agent_version: str = ""
) -> BoxIdentity:
    """Enrol once; returns the identity with the cloud's keys pinned. Raises EnrolmentError
    with the cloud's own explanation (used, expired, wrong venue) or why it is unreachable."""
    req = {
        "box_id": ident.box_id,
        "venue": ident.venue,
        "claim": claim,
        "box_sign_pub": crypto.b64(ident.sign_pub),
        "box_kx_pub": crypto.b64(ident.kx_pub),
        "agent_version": agent_version,
    }
    body = {**req, "sig": crypto.b64(ident.sign(canonical(req)))}
    try:
        async with session.post(f"{ident.cloud_url}/v1/enrol", json=body) as r:
            doc = await r.json(content_type=None)
            status = r.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise EnrolmentError(f"cloud {ident.cloud_url} unreachable: {exc}") from exc
    if status != 200 or not isinstance(doc, dict):
        msg = doc.get("error") if isinstance(doc, dict) else None
        raise EnrolmentError(f"enrolment refused ({status}): {msg or 'no reason given'}")
    try:
        answer = {
            k: str(doc[k]) for k in ("box_id", "tenant", "venue", "cloud_sign_pub", "cloud_kx_pub")
        }
        sig = crypto.unb64(str(doc["sig"]))
        sign_pub = crypto.unb64(answer["cloud_sign_pub"])
    except (KeyError, ValueError) as exc:
        raise EnrolmentError(f"malformed enrolment answer: {exc}") from exc
    if not crypto.verify(sign_pub, sig, canonical(answer)) or answer["box_id"] != ident.box_id:
        raise EnrolmentError("enrolment answer not signed by the key it presents")
    return enrolled_copy(ident, answer["tenant"], answer["cloud_sign_pub"], answer["cloud_kx_pub"])
