"""The aiohttp application: enrolment, ingest, box status and downlink, queries, OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from aiohttp import web

from cloud_api import haccp, notify, observability, validate
from cloud_api.metrics import CloudMetrics
from cloud_api.notify import CloudNotifier
from cloud_api.openapi import OPENAPI
from cloud_api.ratelimit import RateLimiter
from cloud_api.store import CloudStore, Refused
from cloud_sync import crypto
from cloud_sync.signing import request_message

log = logging.getLogger("cloud_api.requests")
T = TypeVar("T")
MAX_ENVELOPE = 32 * 1024 * 1024
CLOCK_SKEW_S = 300.0
ENROL_BURST, ENROL_PER_MINUTE = 10.0, 10.0  # per source address
STORE: web.AppKey[CloudStore] = web.AppKey("store", CloudStore)
ENROL_LIMITER: web.AppKey[RateLimiter] = web.AppKey("enrol_limiter", RateLimiter)
NOTIFIER_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("notifier", asyncio.Task)


@web.middleware
async def error_contract(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer to a bad request is a 4xx with {"error": …}; a 5xx means a bug here."""
    try:
        return await handler(request)
    except Refused as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status >= 500 or exc.content_type == "application/json":
            raise
        return web.json_response({"error": exc.text or exc.reason}, status=exc.status)
    except sa.exc.IntegrityError:
        log.warning("%s %s: conflicts with stored data", request.method, request.path)
        return web.json_response({"error": "conflicts with what is stored"}, status=409)
    except (sa.exc.DataError, OverflowError, RecursionError, UnicodeDecodeError) as exc:
        log.warning("%s %s: value out of range: %s", request.method, request.path, exc)
        return web.json_response({"error": "a value is out of range"}, status=400)


def build_app(
    store: CloudStore,
    admin_token: str,
    metrics: CloudMetrics | None = None,
    notify_every_s: float | None = None,
) -> web.Application:
    app = web.Application(client_max_size=MAX_ENVELOPE)
    app[STORE] = store
    metrics = metrics or CloudMetrics()
    store.on_ingest = metrics.on_ingest
    # One worker thread: the embedded SQLite sees a single writer, requests queue in order.
    pool = ThreadPoolExecutor(1, thread_name_prefix="cloud-db")

    async def run(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def remote(request: web.Request) -> str:
        return request.remote or "?"

    def refused(exc: Refused) -> web.Response:
        return web.json_response({"error": exc.message}, status=exc.status)

    def admin(
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            got = request.headers.get("Authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {admin_token}".encode()):
                return web.json_response({"error": "admin token required"}, status=401)
            return await handler(request)

        return wrapped

    async def authenticated_box(request: web.Request, body: bytes) -> str:
        box_id = request.match_info["box"]
        ts = request.headers.get("X-Box-Time", "")
        sig = request.headers.get("X-Box-Signature", "")
        box = await run(store.box, box_id)
        if box is None:
            await run(store.security, "unknown_box", box_id, remote(request), request.path)
            raise Refused(403, "unknown box")
        try:
            fresh = abs(float(ts) - store.now()) <= CLOCK_SKEW_S
            ok = crypto.verify(
                box.sign_pub,
                crypto.unb64(sig),
                request_message(request.method, request.path_qs, ts, body),
            )
        except ValueError:
            fresh = ok = False
        if not (ok and fresh):
            await run(
                store.security, "bad_request_signature", box_id, remote(request), request.path
            )
            raise Refused(401, "request signature invalid or stale")
        return box_id

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    enrol_limit = app[ENROL_LIMITER] = RateLimiter(burst=ENROL_BURST, per_minute=ENROL_PER_MINUTE)

    async def enrol(request: web.Request) -> web.Response:
        # Unauthenticated and guessable by nature: each source gets a few tries a minute.
        wait = enrol_limit.take(remote(request), store.now())
        if wait > 0:
            await run(store.security, "enrol_rate_limited", None, remote(request), "")
            return web.json_response(
                {"error": f"too many enrolment attempts: retry in {wait:.0f} s"},
                status=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        req = validate.json_object(await request.read())
        answer = await run(store.enrol, req, remote(request))
        metrics.enrolments.labels(str(answer.get("tenant", ""))).inc()
        return web.json_response(answer)

    async def ingest(request: web.Request) -> web.Response:
        blob = await request.read()
        try:
            return web.json_response(await run(store.ingest, blob, remote(request)))
        except Refused as exc:
            metrics.refused.labels(str(exc.status)).inc()
            return refused(exc)

    async def box_status(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            box_id = await authenticated_box(request, body)
            doc = validate.json_object(body)
            validate.integer(doc, "config_version", 0)
            validate.text(doc, "agent_version", 64)
            await run(store.report_status, box_id, doc)
        except Refused as exc:
            return refused(exc)
        box = await run(store.box, box_id)
        if box is not None:
            metrics.status_reports.labels(box.tenant_id).inc()
        return web.json_response({"ok": True})

    async def box_documents(request: web.Request) -> web.Response:
        try:
            box_id = await authenticated_box(request, b"")
        except Refused as exc:
            return refused(exc)
        box = await run(store.box, box_id)
        assert box is not None
        # The box says which versions it runs (?config=3&rules=1&profiles=0); it gets only
        # newer ones. A box that says nothing gets the latest of each kind.
        have: dict[str, int] = {}
        for kind, v in request.query.items():
            have[kind] = validate.query_int(v, kind, 0, 0, validate.MAX_INT)
        return web.json_response(await run(store.latest_documents, box.venue_id, have))

    async def box_watermarks(request: web.Request) -> web.Response:
        try:
            box_id = await authenticated_box(request, b"")
        except Refused as exc:
            return refused(exc)
        return web.json_response({"box": box_id, "streams": await run(store.watermarks, box_id)})

    async def box_report(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            box_id = await authenticated_box(request, body)
            doc = validate.json_object(body)
            validate.integer(doc, "version", 0)
            await run(store.deploy_report, box_id, doc, remote(request))
        except Refused as exc:
            return refused(exc)
        return web.json_response({"ok": True})

    def _limit(request: web.Request) -> int:
        return validate.query_int(request.query.get("limit"), "limit", 1000, 1, 100_000)

    async def readings(request: web.Request) -> web.Response:
        q = request.query
        rows = await run(
            lambda: store.venue_records(
                request.match_info["venue"],
                ["telemetry", "bulk"],
                device=q.get("device"),
                point=q.get("point"),
                limit=_limit(request),
            )
        )
        return web.json_response(rows)

    async def events(request: web.Request) -> web.Response:
        stream = request.query.get("stream", "events")
        stream = {"losses": "loss"}.get(stream, stream)  # the documented plural too
        if stream not in ("events", "alarms", "haccp", "audit", "loss"):
            return web.json_response({"error": f"unknown stream {stream!r}"}, status=400)
        rows = await run(
            lambda: store.venue_records(
                request.match_info["venue"], [stream], limit=_limit(request)
            )
        )
        return web.json_response(rows)

    async def losses(request: web.Request) -> web.Response:
        return web.json_response(await run(store.losses, request.match_info["venue"]))

    async def fleet(_: web.Request) -> web.Response:
        return web.json_response(await run(store.fleet))

    async def security(_: web.Request) -> web.Response:
        return web.json_response(await run(store.security_log))

    async def claims(request: web.Request) -> web.Response:
        req = validate.json_object(await request.read())
        tenant = validate.text(req, "tenant", 64, required=True)
        venue = validate.text(req, "venue", 64, required=True)
        ttl = validate.number(req, "ttl_s", 7 * 86400, 60, 366 * 86400)
        code = await run(store.create_claim, tenant, venue, ttl)
        return web.json_response({"claim": code}, status=201)

    async def publish(request: web.Request) -> web.Response:
        req = validate.json_object(await request.read())
        venue = validate.text(req, "venue", 64, required=True)
        kind = validate.text(req, "kind", 16, required=True)
        body = validate.text(req, "body", 4 * 1024 * 1024, required=True)
        doc = await run(store.publish, venue, kind, body)
        return web.json_response(doc, status=201)

    async def reports(request: web.Request) -> web.Response:
        return web.json_response(await run(store.deploy_reports, request.match_info["box"]))

    async def haccp_anchor(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            box_id = await authenticated_box(request, body)
            box = await run(store.box, box_id)
            assert box is not None
            doc = validate.json_object(body)
        except Refused as exc:
            return refused(exc)
        try:
            receipt = await run(
                haccp.record_anchor,
                store.engine,
                store.keys.sign,
                box.id,
                box.venue_id,
                box.sign_pub,
                doc,
                store.now(),
            )
        except haccp.AnchorRefused as exc:
            return web.json_response({"error": exc.message}, status=exc.status)
        return web.json_response(receipt)

    def _ts(request: web.Request, key: str) -> float | None:
        return validate.query_float(request.query.get(key), key)

    async def haccp_records(request: web.Request) -> web.Response:
        venue = request.match_info["venue"]
        start, end = _ts(request, "from"), _ts(request, "to")
        rows = await run(haccp.venue_records, store.engine, venue, start, end, _limit(request))
        chains = await run(haccp.verify_venue, store.engine, venue)
        return web.json_response(
            {"records": rows, "chains": [dataclasses.asdict(b) for b in chains]}
        )

    notifier = CloudNotifier(store.engine, store.now)

    async def put_notify(request: web.Request) -> web.Response:
        venue = request.match_info["venue"]
        try:
            cfg = notify.parse_config(venue, validate.json_object(await request.read()))
        except (ValueError, notify.NotifyConfigError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        await run(notify.save_config, store.engine, cfg)
        return web.json_response({"venue": venue, "recipients": [r for r, _ in cfg.recipients]})

    async def notifications(request: web.Request) -> web.Response:
        return web.json_response(await run(notifier.rows, request.match_info["venue"]))

    async def start_notifier(app: web.Application) -> None:
        if notify_every_s is not None:
            app[NOTIFIER_TASK] = asyncio.create_task(notifier.run(notify_every_s))

    async def stop_notifier(app: web.Application) -> None:
        task = app.get(NOTIFIER_TASK)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start_notifier)
    app.on_cleanup.append(stop_notifier)

    async def close(_: web.Application) -> None:
        pool.shutdown(wait=True)

    r = app.router
    r.add_get("/openapi.json", openapi)
    r.add_post("/v1/enrol", enrol)
    r.add_post("/v1/ingest", ingest)
    r.add_post("/v1/boxes/{box}/status", box_status)
    r.add_get("/v1/boxes/{box}/documents", box_documents)
    r.add_get("/v1/boxes/{box}/watermarks", box_watermarks)
    r.add_post("/v1/boxes/{box}/reports", box_report)
    r.add_get("/v1/boxes/{box}/reports", admin(reports))
    r.add_get("/v1/venues/{venue}/readings", admin(readings))
    r.add_get("/v1/venues/{venue}/events", admin(events))
    r.add_get("/v1/venues/{venue}/losses", admin(losses))
    r.add_post("/v1/boxes/{box}/haccp/anchors", haccp_anchor)
    r.add_get("/v1/venues/{venue}/haccp/records", admin(haccp_records))
    r.add_put("/v1/venues/{venue}/notify", admin(put_notify))
    r.add_get("/v1/venues/{venue}/notifications", admin(notifications))
    r.add_get("/v1/fleet", admin(fleet))
    r.add_get("/v1/security-events", admin(security))
    r.add_post("/v1/claims", admin(claims))
    r.add_post("/v1/documents", admin(publish))
    observability.add_routes(app, metrics, lambda: run(store.ping), admin)
    # Innermost: the request metrics see the 4xx it answers, not the exception.
    app.middlewares.append(error_contract)
    app.on_cleanup.append(close)
    return app


def default_clock() -> float:
    return time.time()
