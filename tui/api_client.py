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

# Routes the terminal expects; the alarms/HACCP/sync ones are agreed at integration.
ROUTES = {
    "health": "/health",
    "devices": "/devices",
    "latest": "/readings/latest",
    "history": "/readings/history",
    "alarms": "/alarms",
    "ack": "/alarms/{id}/ack",
    "corrective": "/alarms/{id}/corrective-action",
    "checks": "/haccp/checks",
    "probe": "/haccp/probe",
    "log": "/haccp/log",
    "sync": "/sync",
}


def _records(v: Any) -> int:
    """A stream's backlog: a count, or the agent's per-stream table with a record count."""
    if isinstance(v, dict):
        return int(v.get("records", 0))
    return int(v)


class ApiError(Exception):
    """Root of the client's errors."""


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
    severity: str  # critical | warning | info
    state: str  # active | acknowledged | cleared
    message: str
    raised_at: float
    value: float | None = None
    limit: float | None = None
    acknowledged_by: str | None = None


@dataclass(frozen=True, slots=True)
class HaccpCheck:
    id: str
    kind: str
    unit: str
    label: str
    due_at: float | None
    done_at: float | None
    done_by: str | None


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
    day: str
    entries: tuple[HaccpEntry, ...]
    gaps: tuple[tuple[float, float], ...]
    chain_ok: bool | None = None


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
        b = await self._call("GET", "alarms", ROUTES["alarms"])
        return [
            Alarm(
                str(a["id"]),
                str(a.get("device") or a.get("device_id") or ""),
                str(a.get("point") or ""),
                str(a.get("severity") or "warning").lower(),
                str(a.get("state") or "active").lower(),
                str(a.get("message") or ""),
                float(_f(a.get("raised_at")) or _f(a.get("ts")) or 0.0),
                _f(a.get("value")),
                _f(a.get("limit")),
                a.get("acknowledged_by"),
            )
            for a in _items(b, "alarms")
            if "id" in a
        ]

    async def haccp_checks_due(self) -> list[HaccpCheck]:
        b = await self._call("GET", "checks", ROUTES["checks"])
        return [
            HaccpCheck(
                str(c["id"]),
                str(c.get("kind") or ""),
                str(c.get("unit") or c.get("device") or ""),
                str(c.get("label") or c.get("kind") or c["id"]),
                _f(c.get("due_at")),
                _f(c.get("done_at")),
                c.get("done_by"),
            )
            for c in _items(b, "checks")
            if "id" in c
        ]

    async def haccp_log(self, unit: str, day: str) -> HaccpLog:
        q = urlencode({"unit": unit, "day": day})
        b = await self._call("GET", "log", f"{ROUTES['log']}?{q}")
        entries = tuple(
            HaccpEntry(
                float(_f(e.get("ts")) or 0.0),
                str(e.get("unit") or unit),
                str(e.get("kind") or ""),
                _f(e.get("value")),
                e.get("staff") or e.get("staff_id"),
                str(e.get("note") or e.get("message") or ""),
            )
            for e in _items(b, "entries")
        )
        gaps = tuple(
            (float(g[0]), float(g[1]))
            for g in (b.get("gaps") or [] if isinstance(b, dict) else [])
            if isinstance(g, list | tuple) and len(g) == 2
        )
        chain = b.get("chain_ok") if isinstance(b, dict) else None
        return HaccpLog(unit, day, entries, gaps, chain if isinstance(chain, bool) else None)

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
        verification_reading: float | None,
    ) -> None:
        path = ROUTES["corrective"].format(id=quote(alarm_id, safe=""))
        await self._call(
            "POST",
            "corrective",
            path,
            {
                "staff_id": staff_id,
                "pin": pin,
                "action": action,
                "disposition": disposition,
                "verification_reading": verification_reading,
            },
        )

    async def record_probe_reading(self, unit: str, value: float, staff_id: str, pin: str) -> None:
        await self._call(
            "POST",
            "probe",
            ROUTES["probe"],
            {"unit": unit, "value": value, "staff_id": staff_id, "pin": pin},
        )


def _reason(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200] or "no reason given"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:200]
    return str(body)[:200]
