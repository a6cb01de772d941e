"""Local API routes for alarms, rules and HACCP records (the terminal UI's view and actions)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from edge_agent.store.schema import connect
from rules import alarms
from rules.haccp import chain
from rules.service import SERVICES, RulesService

if TYPE_CHECKING:
    from edge_agent.agent import Agent

T = TypeVar("T")

CHECKS = ("opening", "closing", "probe", "calibration", "delivery", "line_clean", "review")


def _read(agent: Agent, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn = connect(agent.config.storage.path, readonly=True)
    try:
        return fn(conn)
    finally:
        conn.close()


def _num(q: Any, key: str) -> float | None:
    raw = q.get(key)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{key} must be a number (unix seconds)\n") from exc


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body must be JSON\n") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object\n")
    return body


def _str(body: dict[str, Any], key: str, required: bool = True) -> str:
    v = body.get(key, "")
    if not isinstance(v, str) or (required and not v.strip()):
        raise web.HTTPBadRequest(text=f"{key!r} is required (text)\n")
    return v.strip()


def _opt_num(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise web.HTTPBadRequest(text=f"{key!r} must be a number\n")
    return float(v)


def add_routes(app: web.Application, agent: Agent) -> None:
    def service() -> RulesService:
        svc = SERVICES.get(agent)
        if svc is None:
            raise web.HTTPServiceUnavailable(text="rules service not running\n")
        return svc

    async def active(_: web.Request) -> web.Response:
        return web.json_response({"alarms": _read(agent, alarms.active)})

    async def history(request: web.Request) -> web.Response:
        q = request.query
        start, end = _num(q, "from"), _num(q, "to")
        limit = int(_num(q, "limit") or 200)
        rows = _read(agent, lambda c: alarms.history(c, start, end, limit))
        return web.json_response({"alarms": rows})

    def _alarm_id(request: web.Request) -> int:
        try:
            return int(request.match_info["id"])
        except ValueError as exc:
            raise web.HTTPNotFound(text="no such alarm\n") from exc

    async def ack(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            a = await service().acknowledge(_alarm_id(request), _str(body, "by"))
        except alarms.AlarmError as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from exc
        return web.json_response({"alarm": a})

    async def corrective(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            a = await service().corrective_action(
                _alarm_id(request),
                _str(body, "by"),
                _str(body, "action"),
                _str(body, "disposition"),
                _opt_num(body, "verification"),
            )
        except alarms.AlarmError as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from exc
        return web.json_response({"alarm": a})

    async def rules(_: web.Request) -> web.Response:
        return web.json_response({"rules": service().engine.stats()})

    async def check(request: web.Request) -> web.Response:
        body = await _body(request)
        kind = _str(body, "check")
        if kind not in CHECKS:
            raise web.HTTPBadRequest(text=f"check must be one of {', '.join(CHECKS)}\n")
        extra: dict[str, Any] = {}
        for key in ("value", "reference"):
            n = _opt_num(body, key)
            if n is not None:
                extra[key] = n
        if "passed" in body:
            if not isinstance(body["passed"], bool):
                raise web.HTTPBadRequest(text="'passed' must be true or false\n")
            extra["passed"] = body["passed"]
        notes = _str(body, "notes", required=False)
        if notes:
            extra["notes"] = notes
        seq = await service().manual_check(_str(body, "unit"), kind, _str(body, "by"), extra)
        return web.json_response({"seq": seq}, status=201)

    async def records(request: web.Request) -> web.Response:
        q = request.query
        start, end = _num(q, "from"), _num(q, "to")
        limit = int(_num(q, "limit") or 500)
        rows = _read(
            agent,
            lambda c: [
                {
                    "seq": r.seq,
                    "ts": r.ts,
                    "unit": r.unit,
                    "kind": r.kind,
                    "data": r.data,
                    "hash": r.hash,
                }
                for r in chain.records(c, start, end, q.get("unit"), q.get("kind"), limit)
            ],
        )
        return web.json_response({"records": rows})

    async def verify(_: web.Request) -> web.Response:
        v = _read(agent, chain.verify)
        return web.json_response(
            {"ok": v.ok, "records": v.records, "broken_seq": v.broken_seq, "reason": v.reason}
        )

    app.router.add_get("/alarms", active)
    app.router.add_get("/alarms/history", history)
    app.router.add_post("/alarms/{id}/ack", ack)
    app.router.add_post("/alarms/{id}/corrective-action", corrective)
    app.router.add_get("/rules", rules)
    app.router.add_post("/haccp/checks", check)
    app.router.add_get("/haccp/records", records)
    app.router.add_get("/haccp/verify", verify)
