"""Local API routes for alarms, rules and HACCP records (the terminal UI's view and actions).

Staff actions (acknowledge, corrective action, manual checks) carry `staff_id` and `pin`; the
PIN is checked against the venue config's `[[staff]]` hashes and the record is signed with the
staff member's name and ID. 401: unknown ID or wrong PIN; 429: locked out after wrong PINs.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from edge_agent import staff_api
from edge_agent.area import AreaContext
from edge_agent.staff import Staff
from rules import alarms
from rules.haccp import chain, checks, due
from rules.haccp import signoff as so
from rules.haccp.presets import unit_limits
from rules.service import RulesService

T = TypeVar("T")

# The running rules service, shared with these routes through the local API's application.
RULES_SERVICE = web.AppKey("rules_service", RulesService)


def _read(ctx: AreaContext, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn = ctx.read_connection()
    try:
        return fn(conn)
    finally:
        conn.close()


def _num(q: Any, key: str) -> float | None:
    raw = q.get(key)
    if raw is None:
        return None
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise web.HTTPBadRequest(text=f"{key} must be a finite number\n")
    return v


MAX_BODY = 64 * 1024
MAX_TEXT = {"notes": 2000, "action": 1000, "disposition": 200}
MAX_ABS_VALUE = 1e6  # any temperature, weight or reading a check can hold


async def _body(request: web.Request) -> dict[str, Any]:
    # JSON only: a web page may post a form or text/plain to a listener without asking
    # first, never application/json.
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the body as application/json\n")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, len(raw), text="body too large\n")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise web.HTTPBadRequest(text="body must be JSON\n") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object\n")
    return body


def _str(body: dict[str, Any], key: str, required: bool = True) -> str:
    v = body.get(key, "")
    if not isinstance(v, str) or (required and not v.strip()):
        raise web.HTTPBadRequest(text=f"{key!r} is required (text)\n")
    limit = MAX_TEXT.get(key, 200)
    if len(v) > limit:
        raise web.HTTPBadRequest(text=f"{key!r} is at most {limit} characters\n")
    return v.strip()


def _opt_num(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise web.HTTPBadRequest(text=f"{key!r} must be a number\n")
    if not math.isfinite(v) or abs(v) > MAX_ABS_VALUE:
        raise web.HTTPBadRequest(
            text=f"{key!r} must be a finite number within ±{MAX_ABS_VALUE:g}\n"
        )
    return float(v)


def signature(staff: Staff) -> str:
    """What a record's `by` says: the name an inspector reads, and the ID that makes it unique."""
    return f"{staff.name} ({staff.id})"


def add_routes(app: web.Application, ctx: AreaContext) -> None:
    directory = staff_api.directory(
        app, ctx.config.staff, ctx.clock, ctx.bus.publish, ctx.config.storage.path
    )

    async def signed(body: dict[str, Any]) -> Staff:
        _str(body, "staff_id")  # bounded like every text field here
        return await staff_api.signed(directory, body)

    def service() -> RulesService:
        svc = app.get(RULES_SERVICE)
        if svc is None:
            raise web.HTTPServiceUnavailable(text="rules service not running\n")
        return svc

    async def active(_: web.Request) -> web.Response:
        return web.json_response({"alarms": _read(ctx, alarms.active)})

    async def history(request: web.Request) -> web.Response:
        q = request.query
        start, end = _num(q, "from"), _num(q, "to")
        limit = int(_num(q, "limit") or 200)
        if not 1 <= limit <= 10_000:
            raise web.HTTPBadRequest(text="limit must be from 1 to 10000\n")
        rows = _read(ctx, lambda c: alarms.history(c, start, end, limit))
        return web.json_response({"alarms": rows})

    def _alarm_id(request: web.Request) -> int:
        try:
            return int(request.match_info["id"])
        except ValueError as exc:
            raise web.HTTPNotFound(text="no such alarm\n") from exc

    async def ack(request: web.Request) -> web.Response:
        body = await _body(request)
        alarm_id, svc = _alarm_id(request), service()
        staff = await signed(body)
        try:
            a = await svc.acknowledge(alarm_id, signature(staff))
        except alarms.AlarmError as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from exc
        return web.json_response({"alarm": a})

    async def corrective(request: web.Request) -> web.Response:
        body = await _body(request)
        alarm_id, svc = _alarm_id(request), service()
        action, disposition = _str(body, "action"), _str(body, "disposition")
        verification = _opt_num(body, "verification")
        staff = await signed(body)  # last: a malformed form does not cost a PIN attempt
        try:
            a = await svc.corrective_action(
                alarm_id, signature(staff), action, disposition, verification
            )
        except alarms.AlarmError as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from exc
        return web.json_response({"alarm": a})

    async def rules(_: web.Request) -> web.Response:
        return web.json_response({"rules": service().engine.stats()})

    async def check(request: web.Request) -> web.Response:
        body = await _body(request)
        kind = _str(body, "check")
        svc = service()
        specs = svc.rule_file.haccp.check_specs
        spec = checks.spec_for(specs, kind)
        if spec is None and kind not in checks.AD_HOC:
            known = [s.id for s in specs] + list(checks.AD_HOC)
            raise web.HTTPBadRequest(text=f"check must be one of {', '.join(known)}\n")
        unit = _str(body, "unit")
        # A unit is what the HACCP rules watch, or a device or zone the venue config names.
        units = {u.id for u in svc.rule_file.haccp.units}
        units |= {d.id for d in ctx.config.devices} | {d.zone for d in ctx.config.devices if d.zone}
        if unit not in units:
            raise web.HTTPBadRequest(
                text=f"no unit {unit[:64]!r}: one of {', '.join(sorted(units)) or '(none)'}\n"
            )
        extra: dict[str, Any] = {}
        for key in ("value", "reference"):
            n = _opt_num(body, key)
            if n is not None:
                extra[key] = n
        if "passed" in body and not isinstance(body["passed"], bool):
            raise web.HTTPBadRequest(text="'passed' must be true or false\n")
        if spec is not None:
            extra.update(_evaluate(svc, spec, unit, body))
        notes = _str(body, "notes", required=False)
        if notes:
            extra["notes"] = notes
        staff = await signed(body)
        extra["staff_id"] = staff.id
        seq = await svc.manual_check(unit, kind, signature(staff), extra)
        return web.json_response(
            {"seq": seq, "by": signature(staff), "passed": extra.get("passed")}, status=201
        )

    def _evaluate(
        svc: RulesService, spec: checks.CheckSpec, unit: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Each item answered and held to its limit; `passed` computed, never taken."""
        items = body.get("items", {})
        if not isinstance(items, dict):
            raise web.HTTPBadRequest(text="'items' must be an object of item id: answer\n")
        answers = dict(items)
        values = [i for i in spec.items if i.kind == "value"]
        if "value" in body and len(values) == 1 and values[0].id not in answers:
            answers[values[0].id] = body["value"]
        limits: tuple[float | None, float | None] = (None, None)
        if spec.per_unit or any(i.unit_limit for i in spec.items):
            # A unit the rules do not know has no limit to hold a value to: recorded as such.
            u = next((x for x in svc.rule_file.haccp.units if x.id == unit), None)
            lim = unit_limits(u, svc.region) if u is not None else None
            if lim is not None:
                limits = (lim.min_c, lim.max_c)
        passed = body.get("passed")
        try:
            return checks.evaluate(
                spec, answers, limits, passed if isinstance(passed, bool) else None
            )
        except checks.CheckError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc

    async def check_action(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            seq = int(request.match_info["seq"])
        except ValueError as exc:
            raise web.HTTPNotFound(text="no such check\n") from exc
        svc = service()
        action, disposition = _str(body, "action"), _str(body, "disposition")
        verification = _opt_num(body, "verification")
        staff = await signed(body)
        try:
            out = await svc.check_action(seq, signature(staff), action, disposition, verification)
        except alarms.AlarmError as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from exc
        return web.json_response({"seq": out, "by": signature(staff)}, status=201)

    async def checks_due(_: web.Request) -> web.Response:
        svc = service()
        tz = ctx.config.venue.timezone
        day = due.venue_day(ctx.clock.time(), tz)
        specs = svc.rule_file.haccp.check_specs
        since = day.start - max(s.every_days for s in specs) * 86400.0
        done = _read(
            ctx,
            lambda c: [
                r
                for k in ("check", "check_action", "missed_check")
                for r in chain.records(c, since, day.end, kind=k)
            ],
        )
        rows = due.checks_due(svc.rule_file.haccp.units, day, done, specs, tz)
        return web.json_response(
            {"day": day.name, "from": day.start, "to": day.end, "checks": rows}
        )

    async def signoffs(request: web.Request) -> web.Response:
        svc = service()
        tz = ctx.config.venue.timezone
        days = svc.rule_file.haccp.signoff_days
        n = max(1, min(60, int(_num(request.query, "periods") or 8)))
        now = ctx.clock.time()
        current = so.period_of(now, tz, days)
        first = so.period_of(current.start - (n - 1) * days * 86400.0 + 7200, tz, days)
        recs = _read(ctx, lambda c: list(chain.records(c, first.start)))
        rows = so.periods(recs, first.start, current.end, tz, days, now)
        return web.json_response({"every_days": days, "periods": rows})

    async def sign_off(request: web.Request) -> web.Response:
        body = await _body(request)
        svc = service()
        tz = ctx.config.venue.timezone
        days = svc.rule_file.haccp.signoff_days
        raw = _str(body, "period", required=False)
        try:
            if raw:
                period = so.parse_period(raw, tz, days)
            else:  # the last period that has ended
                current = so.period_of(ctx.clock.time(), tz, days)
                period = so.period_of(current.start - 1, tz, days)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        notes = _str(body, "notes", required=False)
        staff = await signed(body)
        if staff.role != "manager":
            raise web.HTTPForbidden(text="only a manager can sign the records off\n")
        try:
            out = await svc.signoff(period, signature(staff), staff.id, notes)
        except alarms.AlarmError as exc:
            raise web.HTTPConflict(text=f"{exc}\n") from exc
        return web.json_response(out, status=201)

    async def units(_: web.Request) -> web.Response:
        svc = service()
        out = []
        for u in svc.rule_file.haccp.units:
            lim = unit_limits(u, svc.region)
            out.append(
                {
                    "id": u.id,
                    "label": u.label or u.id,
                    "kind": u.kind,
                    "device": u.device,
                    "point": u.point,
                    "max_c": lim.max_c if lim else None,
                    "min_c": lim.min_c if lim else None,
                    "delay_s": lim.delay_s if lim else None,
                }
            )
        return web.json_response({"region": svc.region, "units": out})

    async def records(request: web.Request) -> web.Response:
        q = request.query
        start, end = _num(q, "from"), _num(q, "to")
        limit = int(_num(q, "limit") or 500)
        rows = _read(
            ctx,
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
        from rules.cli import box_chain_status

        path = ctx.config.storage.path
        st = _read(ctx, lambda c: box_chain_status(c, path))
        return web.json_response(
            {
                "ok": st.ok,
                "records": st.records,
                "broken_seq": st.broken_seq,
                "reason": st.reason,
                "anchor_count": st.anchor_count,
                "anchor_at": st.anchor_at,
            }
        )

    app.router.add_get("/alarms", active)
    app.router.add_get("/alarms/history", history)
    app.router.add_post("/alarms/{id}/ack", ack)
    app.router.add_post("/alarms/{id}/corrective-action", corrective)
    app.router.add_get("/rules", rules)
    app.router.add_post("/haccp/checks", check)
    app.router.add_get("/haccp/checks/due", checks_due)
    app.router.add_post("/haccp/checks/{seq}/corrective-action", check_action)
    app.router.add_get("/haccp/signoffs", signoffs)
    app.router.add_post("/haccp/signoffs", sign_off)
    app.router.add_get("/haccp/units", units)
    app.router.add_get("/haccp/records", records)
    app.router.add_get("/haccp/verify", verify)
