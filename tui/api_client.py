"""Every HTTP call the terminal makes to the agent's local API, in one place.

The agent is the only writer; the terminal reads views and sends intents (acknowledge, record a
probe reading). Each operation returns typed, frozen dataclasses so the screens never touch JSON.

Three failure kinds, because the screen says different things for each:
- `AgentUnreachable`: no socket, connection refused or reset (the agent is restarting).
- `NotAvailable`: the route does not exist on this agent (404 from the router), e.g. an agent
  built without the alarms or sync service. Shown as "not available", never as a crash.
- `Rejected`: the agent understood and said no (wrong PIN, unknown alarm, bad value).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from tui.errors import TerminalError

# The agent's routes: beerflow_edge/api.py, beerflow_edge/history_api.py, rules/api.py, cloud_sync.
ROUTES = {
    "health": "/health",
    "devices": "/devices",
    "latest": "/readings/latest",
    "history": "/readings/history",
    "alarms": "/alarms",
    "alarm_history": "/alarms/history",
    "ack": "/alarms/{id}/ack",
    "corrective": "/alarms/{id}/corrective-action",
    "checks_due": "/haccp/checks/due",
    "check": "/haccp/checks",
    "units": "/haccp/units",
    "records": "/haccp/records",
    "verify": "/haccp/verify",
    "sync": "/sync",
    "staff": "/staff",
    "events": "/events/stream",
}
# The rules service's alarm states, as the terminal words them. An alarm whose condition has
# cleared but that nobody has actioned yet is "cleared" (it still needs a corrective action).
ALARM_STATES = {
    "raised": "active",
    "acknowledged": "acknowledged",
    "actioned": "actioned",
    "closed": "closed",
}


def _records(v: Any) -> int:
    """A stream's backlog: a count, or the agent's per-stream table with a record count."""
    if isinstance(v, dict):
        return int(v.get("records", 0))
    return int(v)


class ApiError(TerminalError):
    """Root of the API client's errors."""


class AgentUnreachable(ApiError):
    pass


class NotAvailable(ApiError):
    def __init__(self, route: str) -> None:
        super().__init__(f"{route} is not available on this agent")
        self.route = route


class Rejected(ApiError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    version: str
    venue_id: str
    venue_name: str
    uptime_s: float
    devices_total: int
    devices_connected: int
    timezone: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    label: str
    zone: str
    profile: str
    enabled: bool
    connected: bool
    last_seen: float | None
    polls: int
    errors: int
    malformed: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Who may sign at the terminal: the ID and the name only (never a PIN hash)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Reading:
    device: str
    point: str
    value: float | int | str | bool | None
    unit: str
    ts: float
    quality: str


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    ts: float
    value: float


@dataclass(frozen=True, slots=True)
class Alarm:
    id: str
    device: str
    point: str
    severity: str  # the rule's priority: critical | high | normal | low
    state: str  # active | acknowledged | actioned | cleared | closed
    message: str
    raised_at: float
    value: float | None = None
    limit: float | None = None
    acknowledged_by: str | None = None
    unit: str = ""  # the HACCP unit the excursion is recorded against
    peak: float | None = None
    action_by: str | None = None
    closed_at: float | None = None

    @property
    def condition_present(self) -> bool:
        """Still out of limits (whatever staff have done about it so far)."""
        return self.state in ("active", "acknowledged", "actioned")


@dataclass(frozen=True, slots=True)
class HaccpCheck:
    id: str
    kind: str  # opening | probe | closing | calibration
    unit: str
    label: str
    due_at: float | None
    done_at: float | None
    done_by: str | None


@dataclass(frozen=True, slots=True)
class ChecksDue:
    day: str  # YYYY-MM-DD in the venue's time zone
    start: float
    end: float
    checks: tuple[HaccpCheck, ...]


@dataclass(frozen=True, slots=True)
class HaccpUnit:
    id: str
    label: str
    kind: str
    device: str
    point: str
    max_c: float | None
    min_c: float | None


@dataclass(frozen=True, slots=True)
class HaccpEntry:
    ts: float
    unit: str
    kind: str
    value: float | None
    staff: str | None
    note: str


@dataclass(frozen=True, slots=True)
class HaccpLog:
    unit: str
    entries: tuple[HaccpEntry, ...]
    gaps: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    records: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class SyncStatus:
    online: bool
    backlog: dict[str, int] = field(default_factory=dict)
    oldest_unsent_age_s: float | None = None
    last_success: float | None = None

    @property
    def backlog_total(self) -> int:
        return sum(self.backlog.values())


def _f(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    """Accept `{"key": [...]}` or a bare list: the new routes' envelopes are not fixed yet."""
    items = body.get(key, []) if isinstance(body, dict) else body
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


class AgentClient:
    """One keep-alive session over the agent's Unix socket; safe to reuse across restarts."""

    def __init__(self, socket_path: str, *, timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn = aiohttp.UnixConnector(path=self.socket_path)
            self._session = aiohttp.ClientSession(connector=conn, timeout=self._timeout)
        return self._session

    async def _call(
        self, method: str, route: str, path: str, payload: dict[str, Any] | None = None
    ) -> Any:
        try:
            async with self._http().request(method, f"http://agent{path}", json=payload) as r:
                text = await r.text()
                status = r.status
        except (aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
            # A dead keep-alive connection must not poison the next attempt.
            await self.close()
            raise AgentUnreachable(str(exc) or type(exc).__name__) from exc
        if status == 404 and (not text.strip() or text.startswith("404: Not Found")):
            raise NotAvailable(route)
        if status >= 400:
            raise Rejected(status, _reason(text))
        try:
            return json.loads(text) if text else {}
        except ValueError as exc:
            raise Rejected(status, "the agent sent something that is not JSON") from exc

    # ---- views ---------------------------------------------------------------------------

    async def health(self) -> Health:
        b = await self._call("GET", "health", ROUTES["health"])
        venue, devs = b.get("venue") or {}, b.get("devices") or {}
        return Health(
            str(b.get("status", "?")),
            str(b.get("version", "?")),
            str(venue.get("id", "")),
            str(venue.get("name", "")),
            float(b.get("uptime_s") or 0.0),
            int(devs.get("total") or 0),
            int(devs.get("connected") or 0),
            str(venue.get("timezone") or ""),
        )

    async def devices(self) -> list[Device]:
        b = await self._call("GET", "devices", ROUTES["devices"])
        return [
            Device(
                str(d["id"]),
                str(d.get("label") or d["id"]),
                str(d.get("zone") or ""),
                str(d.get("profile") or ""),
                bool(d.get("enabled", True)),
                bool(d.get("connected", False)),
                _f(d.get("last_seen")),
                int(d.get("polls") or 0),
                int(d.get("errors") or 0),
                int(d.get("malformed") or 0),
                d.get("last_error"),
            )
            for d in _items(b, "devices")
            if "id" in d
        ]

    async def latest(self, device: str | None = None) -> list[Reading]:
        path = ROUTES["latest"] + (f"?{urlencode({'device': device})}" if device else "")
        b = await self._call("GET", "latest", path)
        return [
            Reading(
                str(r["device"]),
                str(r["point"]),
                r.get("value"),
                str(r.get("unit") or ""),
                float(r.get("ts") or 0.0),
                str(r.get("quality") or "good"),
            )
            for r in _items(b, "readings")
            if "device" in r and "point" in r
        ]

    async def history(
        self, device: str, point: str, since: float, limit: int = 2000
    ) -> list[HistoryPoint]:
        """Oldest first."""
        q = urlencode({"device": device, "point": point, "since": since, "limit": limit})
        b = await self._call("GET", "history", f"{ROUTES['history']}?{q}")
        pts = [
            HistoryPoint(float(r["ts"]), v)
            for r in _items(b, "readings")
            if (v := _f(r.get("value"))) is not None and _f(r.get("ts")) is not None
        ]
        return sorted(pts, key=lambda p: p.ts)

    async def alarms(self) -> list[Alarm]:
        """Open alarms (not closed), as the rules service keeps them (rules/alarms.py)."""
        b = await self._call("GET", "alarms", ROUTES["alarms"])
        return [_alarm(a) for a in _items(b, "alarms") if "id" in a]

    async def alarm_history(self, limit: int = 20) -> list[Alarm]:
        """The most recent alarms, newest first, closed ones included."""
        q = urlencode({"limit": limit})
        b = await self._call("GET", "alarm_history", f"{ROUTES['alarm_history']}?{q}")
        return [_alarm(a) for a in _items(b, "alarms") if "id" in a]

    async def haccp_checks_due(self) -> ChecksDue:
        b = await self._call("GET", "checks_due", ROUTES["checks_due"])
        checks = tuple(
            HaccpCheck(
                str(c["id"]),
                str(c.get("check") or ""),
                str(c.get("unit") or ""),
                str(c.get("label") or ""),
                _f(c.get("due_at")),
                _f(c.get("done_at")),
                c.get("done_by"),
            )
            for c in _items(b, "checks")
            if "id" in c
        )
        return ChecksDue(
            str(b.get("day") or ""), _f(b.get("from")) or 0.0, _f(b.get("to")) or 0.0, checks
        )

    async def staff(self) -> list[StaffMember]:
        b = await self._call("GET", "staff", ROUTES["staff"])
        return [
            StaffMember(str(m["id"]), str(m.get("name") or m["id"]))
            for m in _items(b, "staff")
            if "id" in m
        ]

    async def haccp_units(self) -> list[HaccpUnit]:
        """The venue's HACCP units with the limits the rules service enforces (°C)."""
        b = await self._call("GET", "units", ROUTES["units"])
        return [
            HaccpUnit(
                str(u["id"]),
                str(u.get("label") or u["id"]),
                str(u.get("kind") or ""),
                str(u.get("device") or ""),
                str(u.get("point") or ""),
                _f(u.get("max_c")),
                _f(u.get("min_c")),
            )
            for u in _items(b, "units")
            if "id" in u
        ]

    async def haccp_log(self, unit: str, start: float, end: float) -> HaccpLog:
        """One unit's records between two instants (oldest first); gap records become gaps."""
        q = urlencode({"unit": unit, "from": start, "to": end, "limit": 5000})
        b = await self._call("GET", "records", f"{ROUTES['records']}?{q}")
        entries: list[HaccpEntry] = []
        gaps: list[tuple[float, float]] = []
        for r in _items(b, "records"):
            raw = r.get("data")
            data: dict[str, Any] = raw if isinstance(raw, dict) else {}
            kind = str(r.get("kind") or "")
            if kind == "gap":
                a, z = _f(data.get("from")), _f(data.get("to"))
                if a is not None and z is not None:
                    gaps.append((a, z))
                continue
            entries.append(
                HaccpEntry(
                    float(_f(r.get("ts")) or 0.0),
                    str(r.get("unit") or unit),
                    kind,
                    _f(data.get("value")),
                    data.get("by"),
                    _note(kind, data),
                )
            )
        return HaccpLog(unit, tuple(entries), tuple(gaps))

    async def verify_chain(self) -> ChainCheck:
        b = await self._call("GET", "verify", ROUTES["verify"])
        reason = b.get("reason")
        return ChainCheck(bool(b.get("ok")), int(b.get("records") or 0), reason and str(reason))

    async def sync_status(self) -> SyncStatus:
        b = await self._call("GET", "sync", ROUTES["sync"])
        if not b.get("enabled", True):
            # Not provisioned: no cloud to be offline from, so no offline banner either.
            raise NotAvailable("sync")
        backlog = b.get("backlog") or {}
        return SyncStatus(
            bool(b.get("online", False)),
            {str(k): _records(v) for k, v in backlog.items()} if isinstance(backlog, dict) else {},
            _f(b.get("oldest_unsent_age_s")),
            _f(b.get("last_success")),
        )

    # ---- intents -------------------------------------------------------------------------

    async def acknowledge(self, alarm_id: str, staff_id: str, pin: str) -> None:
        path = ROUTES["ack"].format(id=quote(alarm_id, safe=""))
        await self._call("POST", "ack", path, {"staff_id": staff_id, "pin": pin})

    async def corrective_action(
        self,
        alarm_id: str,
        staff_id: str,
        pin: str,
        action: str,
        disposition: str,
        verification_c: float | None,
    ) -> None:
        path = ROUTES["corrective"].format(id=quote(alarm_id, safe=""))
        body: dict[str, Any] = {
            "staff_id": staff_id,
            "pin": pin,
            "action": action,
            "disposition": disposition,
        }
        if verification_c is not None:
            body["verification"] = verification_c
        await self._call("POST", "corrective", path, body)

    async def record_check(
        self,
        unit: str,
        check: str,
        staff_id: str,
        pin: str,
        *,
        value_c: float | None = None,
        passed: bool | None = None,
        notes: str = "",
    ) -> int:
        """A manual HACCP check (opening, closing, probe, calibration…); its sequence number."""
        body: dict[str, Any] = {"unit": unit, "check": check, "staff_id": staff_id, "pin": pin}
        if value_c is not None:
            body["value"] = value_c
        if passed is not None:
            body["passed"] = passed
        if notes:
            body["notes"] = notes
        b = await self._call("POST", "check", ROUTES["check"], body)
        return int(b.get("seq") or 0) if isinstance(b, dict) else 0

    async def record_probe_reading(self, unit: str, value_c: float, staff_id: str, pin: str) -> int:
        return await self.record_check(unit, "probe", staff_id, pin, value_c=value_c)


def _alarm(a: dict[str, Any]) -> Alarm:
    state = ALARM_STATES.get(str(a.get("state") or "raised"), "active")
    if a.get("cleared") and state != "closed":
        state = "cleared"
    return Alarm(
        str(a["id"]),
        str(a.get("device") or ""),
        str(a.get("point") or ""),
        str(a.get("priority") or "normal").lower(),
        state,
        str(a.get("message") or ""),
        float(_f(a.get("raised_at")) or 0.0),
        _f(a.get("value")),
        _f(a.get("limit_value")),
        a.get("acked_by"),
        str(a.get("unit") or ""),
        _f(a.get("peak")),
        a.get("action_by"),
        _f(a.get("closed_at")),
    )


def _num_text(v: Any) -> str:
    f = _f(v)
    return "" if f is None else f"{f:g}"


def _note(kind: str, d: dict[str, Any]) -> str:
    """One line of what a record says, for the day's log on screen and in the export."""
    if kind == "reading":
        return f"min {_num_text(d.get('min'))} · max {_num_text(d.get('max'))} · n {d.get('n')}"
    if kind == "check":
        bits = [str(d.get("check") or "")]
        if "passed" in d:
            bits.append("passed" if d["passed"] else "FAILED")
        if d.get("notes"):
            bits.append(str(d["notes"]))
        return " · ".join(b for b in bits if b)
    if kind == "excursion_start":
        return str(d.get("message") or f"limit {_num_text(d.get('limit'))}")
    if kind == "excursion_end":
        return f"peak {_num_text(d.get('peak'))} · {d.get('minutes_over_limit')} min over"
    if kind == "corrective_action":
        v = _num_text(d.get("verification"))
        return f"{d.get('action')} · {d.get('disposition')}" + (f" · verified {v}" if v else "")
    if kind == "acknowledged":
        return f"alarm {d.get('alarm_id')}"
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items()) if k != "by")[:120]


def _reason(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200] or "no reason given"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:200]
    return str(body)[:200]
