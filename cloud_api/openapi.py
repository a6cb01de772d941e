"""The OpenAPI description of every endpoint (served at /openapi.json; a test checks it is
complete against the router)."""

from __future__ import annotations

from typing import Any


def _op(
    summary: str, auth: str, ok: str = "200", body: str | None = None, params: tuple[str, ...] = ()
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {"description": "success"},
            "400": {"description": "malformed"},
            "401": {"description": "authentication failed"},
        },
        "x-auth": auth,
    }
    if body:
        op["requestBody"] = {"content": {body: {"schema": {"type": "object"}}}}
    if params:
        op["parameters"] = [
            {
                "name": p,
                "in": "path" if p in ("box", "venue") else "query",
                "required": p in ("box", "venue"),
                "schema": {"type": "string"},
            }
            for p in params
        ]
    return op


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "BeerFlow cloud", "version": "1"},
    "components": {
        "securitySchemes": {
            "admin": {"type": "http", "scheme": "bearer"},
            "box": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Box-Signature",
                "description": "Ed25519 over method, path, X-Box-Time and SHA-256 of the body",
            },
        }
    },
    "paths": {
        "/openapi.json": {"get": _op("this document", "none")},
        "/healthz": {
            "get": _op("liveness: the service answers (does not touch the database)", "none")
        },
        "/readyz": {
            "get": {
                **_op("readiness: the database answers within 2 s", "none"),
                "responses": {
                    "200": {"description": "ready"},
                    "503": {"description": "the database did not answer"},
                },
            }
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (text exposition format); also served without a token on "
                "the separate metrics listener (`serve --metrics-port`)",
                "admin",
            )
        },
        "/v1/enrol": {
            "post": _op(
                "enrol a box with a one-time claim code; returns the cloud's public keys, signed",
                "claim code + box key proof",
                body="application/json",
            )
        },
        "/v1/ingest": {
            "post": _op(
                "an encrypted envelope of records; idempotent on (box, "
                "stream, seq); answers signed per-stream watermarks",
                "envelope AEAD",
                body="application/octet-stream",
            )
        },
        "/v1/boxes/{box}/status": {
            "post": _op(
                "the box reports backlog and versions",
                "box",
                body="application/json",
                params=("box",),
            )
        },
        "/v1/boxes/{box}/watermarks": {
            "get": _op(
                "per stream, the highest seq the cloud holds contiguously for this box "
                "(a box restored from a backup lines its outbox up with it)",
                "box",
                params=("box",),
            )
        },
        "/v1/boxes/{box}/documents": {
            "get": _op(
                "signed documents for the box's venue newer than the versions it names",
                "box",
                params=("box", "config", "rules", "profiles"),
            )
        },
        "/v1/boxes/{box}/reports": {
            "post": _op(
                "the box reports applying a document (applied / rolled_back / refused)",
                "box",
                body="application/json",
                params=("box",),
            ),
            "get": _op("deployment reports of a box", "admin", params=("box",)),
        },
        "/v1/venues/{venue}/readings": {
            "get": _op("a venue's readings", "admin", params=("venue", "device", "point", "limit"))
        },
        "/v1/venues/{venue}/events": {
            "get": _op(
                "a venue's events, alarms, HACCP records or audit entries",
                "admin",
                params=("venue", "stream", "limit"),
            )
        },
        "/v1/venues/{venue}/losses": {
            "get": _op(
                "records the venue's boxes evicted under quota, as ranges",
                "admin",
                params=("venue",),
            )
        },
        "/v1/boxes/{box}/haccp/anchors": {
            "post": _op(
                "the box's signed HACCP chain head (count, last hash); answers a signed "
                "receipt, or 409 when the chain no longer extends the last anchor",
                "box",
                body="application/json",
                params=("box",),
            )
        },
        "/v1/venues/{venue}/haccp/records": {
            "get": _op(
                "a venue's HACCP chain records with their hashes, and each box's chain verdict",
                "admin",
                params=("venue", "from", "to", "limit"),
            )
        },
        "/v1/venues/{venue}/notify": {
            "put": _op(
                "who the cloud tells about a venue's silent box or an alarm the box has not "
                "got through: recipients with Apprise URLs, silent_after_s, second_path_after_s",
                "admin",
                body="application/json",
                params=("venue",),
            )
        },
        "/v1/venues/{venue}/notifications": {
            "get": _op(
                "the cloud's notifications for a venue and their state", "admin", params=("venue",)
            )
        },
        "/v1/fleet": {"get": _op("every box: online, last seen, backlog, versions", "admin")},
        "/v1/security-events": {"get": _op("rejected requests, newest first", "admin")},
        "/v1/claims": {
            "post": _op("create a one-time claim code", "admin", ok="201", body="application/json")
        },
        "/v1/documents": {
            "post": _op(
                "publish a signed, versioned venue config, rule set or profile set",
                "admin",
                ok="201",
                body="application/json",
            )
        },
    },
}
