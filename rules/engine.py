"""The rule engine: pure state machines over readings, events and time; no I/O.

Feed it readings and events with the instant they are processed, and call `tick(now)` when
`next_wake()` comes due; it returns `Firing`s for the service to act on. Every piece of state a
restart must not lose (pending-since instants, active flags, suppression episodes, last-seen
instants, schedule positions, statistics) is exported as JSON rows by `dirty_rows()` and taken
back by `restore()`, so "above 5 °C for 15 minutes" fires at its original deadline.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import zoneinfo
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.messages import Event, Reading, Value
from rules.model import Condition, Rule

# A device silent for longer than this and then heard again is treated as powered up.
POWER_UP_GAP_S = 600.0
# last-seen instants are persisted at most this often per device (no_data survives restarts)
SEEN_PERSIST_S = 60.0

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class RuleState:
    pending_since: float | None = None
    active: bool = False
    value: Value | None = None
    count: int = 0
    last_fired: float | None = None
    last_cleared: float | None = None
    next_schedule: float | None = None
    # when the value last went past the limit (suppression explains only what began in it)
    beyond_since: float | None = None
    history: deque[tuple[float, float]] = field(default_factory=deque)

    def to_json(self) -> dict[str, Any]:
        return {
            "pending_since": self.pending_since,
            "active": self.active,
            "value": self.value,
            "count": self.count,
            "last_fired": self.last_fired,
            "last_cleared": self.last_cleared,
            "next_schedule": self.next_schedule,
            "beyond_since": self.beyond_since,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RuleState:
        return cls(
            d.get("pending_since"),
            bool(d.get("active")),
            d.get("value"),
            int(d.get("count", 0)),
            d.get("last_fired"),
            d.get("last_cleared"),
            d.get("next_schedule"),
            d.get("beyond_since"),
        )


@dataclass
class Episode:
    """The current (end is None) or last true-episode of a boolean point: defrost, door."""

    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Firing:
    rule: Rule
    transition: Literal["fire", "clear"]
    at: float
    value: Value | None
    # For a fire: when the condition started (for the record: time over the limit).
    since: float | None = None
    reason: str = ""


def as_float(v: Value | None) -> float | None:
    if isinstance(v, bool) or v is None:
        return float(v) if isinstance(v, bool) else None
    if isinstance(v, int | float):
        return float(v)
    return None


def truthy(v: Value | None) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "on", "yes", "open", "active")
    return bool(v)


def matches(v: Value | None, equals: str) -> bool:
    e = equals.strip().lower()
    if e in ("true", "false", "on", "off"):
        return truthy(v) == (e in ("true", "on"))
    f = as_float(v)
    if f is not None:
        try:
            return f == float(e)
        except ValueError:
            return False
    return str(v).strip().lower() == e


class RuleEngine:
    def __init__(self, rules: Iterable[Rule], tz: str = "UTC", started_at: float = 0.0) -> None:
        self.all_rules = {r.id: r for r in rules}
        # Higher priority first: their actions go out first when several fire together.
        self.rules = sorted(
            (r for r in self.all_rules.values() if r.enabled), key=lambda r: -r.rank
        )
        self.tz = zoneinfo.ZoneInfo(tz)
        self.started_at = started_at
        self.state: dict[str, RuleState] = {r.id: RuleState() for r in self.all_rules.values()}
        self.flags: dict[tuple[str, str], Episode] = {}
        self.seen: dict[str, float] = {}
        self.powered: dict[str, float] = {}
        self.latest: dict[tuple[str, str], Value] = {}
        self._seen_saved: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._wake: list[tuple[float, int, str]] = []
        self._armed: dict[str, float] = {}
        self._seq = itertools.count()
        self.by_point: dict[tuple[str, str], list[Rule]] = {}
        self.by_flag: dict[tuple[str, str], list[Rule]] = {}
        self.by_power: dict[str, list[Rule]] = {}
        self.no_data: dict[str, list[Rule]] = {}
        self.by_event: dict[str, list[Rule]] = {}
        for r in self.rules:
            t = r.trigger
            if t.type in ("threshold", "rate", "state"):
                self.by_point.setdefault((t.device, t.point), []).append(r)
            elif t.type == "no_data":
                self.no_data.setdefault(t.device, []).append(r)
            elif t.type == "event" and t.kind:
                self.by_event.setdefault(t.kind, []).append(r)
            for s in r.suppress:
                dev = s.device or t.device
                if s.when == "power_up":
                    self.by_power.setdefault(dev, []).append(r)
                else:
                    self.by_flag.setdefault((dev, s.point), []).append(r)

    # ---- durable state ------------------------------------------------------------------

    def dirty_rows(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self._dirty:
            kind, _, name = key.partition(":")
            if kind == "rule":
                out[key] = self.state[name].to_json()
            elif kind == "flag":
                dev, _, point = name.partition("/")
                ep = self.flags[(dev, point)]
                out[key] = {"start": ep.start, "end": ep.end}
            elif kind == "seen":
                out[key] = self.seen[name]
            elif kind == "power":
                out[key] = self.powered[name]
        self._dirty.clear()
        return out

    def restore(self, rows: dict[str, Any]) -> None:
        for key, val in rows.items():
            kind, _, name = key.partition(":")
            if kind == "rule" and name in self.state:
                self.state[name] = RuleState.from_json(val)
            elif kind == "flag":
                dev, _, point = name.partition("/")
                self.flags[(dev, point)] = Episode(val.get("start"), val.get("end"))
            elif kind == "seen":
                self.seen[name] = self._seen_saved[name] = float(val)
            elif kind == "power":
                self.powered[name] = float(val)
        for r in self.rules:
            v = self.state[r.id].value
            if v is not None and r.trigger.type in ("threshold", "state"):
                self.latest[(r.trigger.device, r.trigger.point)] = v

    def resume(self, now: float) -> list[Firing]:
        """After start or restore: evaluate everything once and arm every timer."""
        out: list[Firing] = []
        for r in self.rules:
            self._evaluate(r, now, out)
        return out

    # ---- inputs ---------------------------------------------------------------------------

    def on_reading(self, r: Reading, now: float) -> list[Firing]:
        out: list[Firing] = []
        dev = r.device_id
        last = self.seen.get(dev)
        if (last is None or now - last > POWER_UP_GAP_S) and dev in self.by_power:
            self.powered[dev] = now
            self._dirty.add(f"power:{dev}")
            for rule in self.by_power[dev]:
                self._evaluate(rule, now, out)
        self.seen[dev] = now
        if now - self._seen_saved.get(dev, -1e18) >= SEEN_PERSIST_S:
            self._seen_saved[dev] = now
            self._dirty.add(f"seen:{dev}")
        for rule in self.no_data.get(dev, ()):
            self._evaluate(rule, now, out)
        key = (dev, r.point)
        self.latest[key] = r.value
        deps = self.by_flag.get(key)
        if deps is not None:
            ep = self.flags.setdefault(key, Episode())
            on = truthy(r.value)
            changed = False
            if on and (ep.start is None or ep.end is not None):
                ep.start, ep.end, changed = now, None, True
            elif not on and ep.start is not None and ep.end is None:
                ep.end, changed = now, True
            if changed:
                self._dirty.add(f"flag:{dev}/{r.point}")
                for rule in deps:
                    self._evaluate(rule, now, out)
        for rule in self.by_point.get(key, ()):
            st = self.state[rule.id]
            if st.value != r.value and (st.pending_since is not None or st.active):
                # the value a restart resumes with (and the alarm records) must be the last one
                self._dirty.add(f"rule:{rule.id}")
            st.value = r.value
            if rule.trigger.type == "rate":
                f = as_float(r.value)
                if f is not None:
                    st.history.append((now, f))
            self._evaluate(rule, now, out)
        return out

    def on_event(self, e: Event, now: float) -> list[Firing]:
        out: list[Firing] = []
        for rule in self.by_event.get(e.kind, ()):
            t = rule.trigger
            if t.source and t.source != e.source:
                continue
            st = self.state[rule.id]
            if self._blocked(rule, st, now):
                continue
            self._fire(rule, st, now, e.data.get("value"), now, f"event {e.kind}", out)
        return out

    def next_wake(self) -> float | None:
        while self._wake:
            t, _, rid = self._wake[0]
            if self._wants(rid, t):
                return t
            heapq.heappop(self._wake)
        return None

    def tick(self, now: float) -> list[Firing]:
        out: list[Firing] = []
        due: list[str] = []
        while self._wake and self._wake[0][0] <= now:
            t, _, rid = heapq.heappop(self._wake)
            if self._armed.get(rid) == t:
                del self._armed[rid]
                due.append(rid)
        for rid in due:
            self._evaluate(self.all_rules[rid], now, out)
        return out

    # ---- evaluation -------------------------------------------------------------------------

    def _arm(self, rule_id: str, t: float) -> None:
        # One wake-up per rule (the earliest): a reading every second while a rule is pending
        # must not grow the heap. A wake-up that finds nothing to do is harmless.
        cur = self._armed.get(rule_id)
        if cur is not None and cur <= t:
            return
        self._armed[rule_id] = t
        heapq.heappush(self._wake, (t, next(self._seq), rule_id))

    def _wants(self, rule_id: str, t: float) -> bool:
        return self._armed.get(rule_id) == t

    def suppression(
        self, rule: Rule, now: float, began_by: float | None = None
    ) -> tuple[float, float] | None:
        """(earliest start, latest end) of the suppression windows holding `rule` at `now`;
        with `began_by`, door windows only if they had begun by then (those that explain it)."""
        found: tuple[float, float] | None = None
        for s in rule.suppress:
            dev = s.device or rule.trigger.device
            if s.when == "power_up":
                p = self.powered.get(dev)
                if p is None or not (p <= now < p + s.cap_s):
                    continue
                start, end = p, p + s.cap_s
            else:
                ep = self.flags.get((dev, s.point))
                if ep is None or ep.start is None:
                    continue
                start, end = ep.start, ep.start + s.cap_s
                if ep.end is not None:
                    end = min(end, ep.end + s.recovery_s)
                if not (start <= now < end):
                    continue
            # A door opened after the value was already over explains nothing; a defrost or a
            # power-up heats the cabinet whenever it starts (and is capped).
            if began_by is not None and s.when == "door" and start > began_by:
                continue
            found = (start, end) if found is None else (min(found[0], start), max(found[1], end))
        return found

    def suppressed_until(self, rule: Rule, now: float) -> float | None:
        sup = self.suppression(rule, now)
        return None if sup is None else sup[1]

    def conditions_hold(self, rule: Rule, now: float) -> bool:
        return all(self._condition(c, now) for c in rule.conditions)

    def _condition(self, c: Condition, now: float) -> bool:
        if c.type == "time_window":
            local = dt.datetime.fromtimestamp(now, self.tz)
            if c.days and _DAYS[local.weekday()] not in c.days:
                return False
            hm = f"{local.hour:02d}:{local.minute:02d}"
            if c.start <= c.end:
                return c.start <= hm < c.end
            return hm >= c.start or hm < c.end
        v = self.latest.get((c.device, c.point))
        if v is None:
            return False
        if c.equals is not None:
            return matches(v, c.equals)
        f = as_float(v)
        if f is None:
            return False
        return (c.above is None or f > c.above) and (c.below is None or f < c.below)

    def _blocked(self, rule: Rule, st: RuleState, now: float) -> bool:
        if st.last_fired is not None and now < st.last_fired + rule.cooldown_s:
            self._arm(rule.id, st.last_fired + rule.cooldown_s)
            return True
        return not self.conditions_hold(rule, now)

    def _condition_now(self, rule: Rule, st: RuleState, now: float) -> tuple[bool, bool]:
        """(beyond the trigger limit, back past the clear limit) for the current value."""
        t = rule.trigger
        if t.type == "state":
            m = st.value is not None and matches(st.value, t.equals or "")
            return m, not m
        if t.type == "rate":
            while st.history and st.history[0][0] < now - t.window_s:
                st.history.popleft()
            if len(st.history) < 2 or st.history[-1][0] - st.history[0][0] <= 0:
                return False, True
            (t0, v0), (t1, v1) = st.history[0], st.history[-1]
            rate = (v1 - v0) / ((t1 - t0) / 60)
            lim = t.per_minute or 0.0
            beyond = rate >= lim if lim >= 0 else rate <= lim
            return beyond, not beyond
        f = as_float(st.value)
        if f is None:
            return False, False
        if t.above is not None:
            return f > t.above, f <= t.clear_limit
        return f < t.limit, f >= t.clear_limit

    def _evaluate(self, rule: Rule, now: float, out: list[Firing]) -> None:
        t = rule.trigger
        st = self.state[rule.id]
        if t.type == "schedule":
            self._evaluate_schedule(rule, st, now, out)
            return
        if t.type == "event":
            return
        if t.type == "no_data":
            since = self.seen.get(t.device, self.started_at)
            silent = now - since >= (t.minutes or 0) * 60
            if st.active and not silent:
                self._clear(rule, st, now, None, out)
            elif not st.active and not silent:
                self._arm(rule.id, since + (t.minutes or 0) * 60)
            elif not st.active and silent and not self._blocked(rule, st, now):
                self._fire(rule, st, now, None, since, f"no data since {since:.0f}", out)
            return
        beyond, cleared = self._condition_now(rule, st, now)
        if st.active:
            if cleared:
                self._clear(rule, st, now, st.value, out)
            return
        if not beyond:
            if st.pending_since is not None or st.beyond_since is not None:
                st.pending_since = st.beyond_since = None
                self._dirty.add(f"rule:{rule.id}")
            return
        if st.beyond_since is None:
            st.beyond_since = now
            self._dirty.add(f"rule:{rule.id}")
        # A defrost or power-up (or a door open when the crossing began) explains it: the delay
        # counts from the end of the window, never through it. A door opened after the value
        # was already over the limit explains nothing, and the timer keeps running.
        sup = self.suppression(rule, now, began_by=st.beyond_since)
        if sup is not None:
            if st.pending_since is not None:
                st.pending_since = None
                self._dirty.add(f"rule:{rule.id}")
            self._arm(rule.id, sup[1])
            return
        if st.pending_since is None:
            st.pending_since = now
            self._dirty.add(f"rule:{rule.id}")
        deadline = st.pending_since + t.for_s
        if now < deadline:
            self._arm(rule.id, deadline)
            return
        if self._blocked(rule, st, now):
            return
        self._fire(rule, st, now, st.value, st.pending_since, "limit held", out)

    def _evaluate_schedule(self, rule: Rule, st: RuleState, now: float, out: list[Firing]) -> None:
        if st.next_schedule is None:
            st.next_schedule = self.next_cron(rule.trigger.cron or "", now)
            self._dirty.add(f"rule:{rule.id}")
        if now >= st.next_schedule:
            # One firing for the instant due (or missed while the box was off), then move on.
            due = st.next_schedule
            st.next_schedule = self.next_cron(rule.trigger.cron or "", now)
            self._dirty.add(f"rule:{rule.id}")
            if self.conditions_hold(rule, now):
                st.count += 1
                st.last_fired = now
                out.append(Firing(rule, "fire", now, None, due, "schedule"))
        self._arm(rule.id, st.next_schedule)

    def next_cron(self, expr: str, after: float) -> float:
        from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

        trig = CronTrigger.from_crontab(expr, timezone=self.tz)
        base = dt.datetime.fromtimestamp(after, self.tz)
        nxt = trig.get_next_fire_time(None, base + dt.timedelta(seconds=1))
        assert nxt is not None
        return float(nxt.timestamp())

    def _fire(
        self,
        rule: Rule,
        st: RuleState,
        now: float,
        value: Value | None,
        since: float | None,
        reason: str,
        out: list[Firing],
    ) -> None:
        st.count += 1
        st.last_fired = now
        st.pending_since = None
        if rule.trigger.type != "event":
            st.active = True
        self._dirty.add(f"rule:{rule.id}")
        out.append(Firing(rule, "fire", now, value, since, reason))

    def _clear(
        self, rule: Rule, st: RuleState, now: float, value: Value | None, out: list[Firing]
    ) -> None:
        st.active = False
        st.pending_since = st.beyond_since = None
        st.last_cleared = now
        self._dirty.add(f"rule:{rule.id}")
        out.append(Firing(rule, "clear", now, value, None, "cleared"))

    def stats(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "enabled": r.enabled,
                "priority": r.priority,
                "trigger": r.trigger.type,
                "active": self.state[r.id].active,
                "pending_since": self.state[r.id].pending_since,
                "count": self.state[r.id].count,
                "last_fired": self.state[r.id].last_fired,
            }
            for r in self.all_rules.values()
        ]
