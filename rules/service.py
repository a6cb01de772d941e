"""The rules service: bus in, rule engine and HACCP monitor, durable actions out.

Per batch of messages: evaluate, publish commands and notifications at once (they are
at-least-once), then commit alarms, HACCP records and the engine's durable state in one
synchronous=FULL transaction, then announce alarm changes on the bus. A kill at any instant
leaves the store with the state of the last committed batch, from which `run` resumes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never

from edge_agent.bus import Bus, Overflow, Subscription
from edge_agent.clock import Clock
from edge_agent.errors import StoreError
from edge_agent.messages import Command, Event, Reading, Severity
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter
from rules import alarms
from rules.actions import AlarmAction, ClearAlarmAction, CommandAction, NotifyAction, RecordAction
from rules.engine import Firing, RuleEngine, as_float
from rules.haccp import chain, due, unit_config
from rules.haccp.monitor import HaccpMonitor, Rec
from rules.model import RuleFile
from rules.notify import ladder

log = logging.getLogger(__name__)

COMMAND_TTL_S = 60.0
# Durable work waiting behind an in-flight commit before evaluation waits for the disk.
MAX_PENDING_OPS = 10_000
COMMIT_RETRY_FIRST_S = 0.1
COMMIT_RETRY_CAP_S = 10.0
_SEVERITY = {
    "low": Severity.WARNING,
    "normal": Severity.ALARM,
    "high": Severity.ALARM,
    "critical": Severity.CRITICAL,
}
Op = Callable[[sqlite3.Connection], Any]


@dataclass
class _Open:
    """An alarm nobody has acknowledged yet: where it is on the escalation ladder."""

    alarm_id: int
    rule_id: str
    raised_at: float
    level: int


class RulesService:
    def __init__(
        self,
        bus: Bus,
        writer: StoreWriter,
        clock: Clock,
        rule_file: RuleFile,
        *,
        timezone: str = "UTC",
        region: str = "uk",
        capacity: int = 10_000,
        venue: str = "",
    ) -> None:
        self.bus = bus
        self.writer = writer
        self.clock = clock
        self.rule_file = rule_file
        self.region = rule_file.haccp.region or region
        self.timezone = timezone
        self.venue = venue or "venue"
        # Called after a commit that wrote notification records (the notifier's wake).
        self.on_notify: Callable[[], None] | None = None
        self.notifier: Any = None  # the off-box notifier, when recipients are configured
        # With no rules and no HACCP units there is nothing to watch readings for, and a
        # blocking subscriber that only discards would still pace every producer.
        watching = bool(rule_file.rules or rule_file.haccp.units)
        kinds = (Reading, Event) if watching else (Event,)
        self.sub: Subscription = bus.subscribe("rules", kinds, capacity, Overflow.BLOCK)
        now = clock.time()
        self.engine = RuleEngine(rule_file.rules, timezone, started_at=now)
        self.monitor = HaccpMonitor(rule_file.haccp.units, self.region, now)
        self._missed_scan_at = now  # deadlines up to here were looked at (or are in open())
        self._missed_next: tuple[float, float | None] | None = None
        self.unacked: dict[int, _Open] = {}
        self.peaks: dict[str, tuple[float, float]] = {}
        self.ready = asyncio.Event()
        self.batches = 0
        self._get: asyncio.Task[list[Any]] | None = None
        self._sleep: asyncio.Task[None] | None = None
        self._sleep_until: float | None = None
        self._ops: list[Op] = []
        self._rows: dict[str, Any] = {}
        self._after: list[Event] = []
        self._committer: asyncio.Future[None] | None = None
        self.commit_failures = 0  # consecutive failed durable commits (kept, retried)

    # ---- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Take back the durable state the last run committed, then arm every timer."""
        conn = connect(self.writer.path, readonly=True)
        try:
            rows = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM rule_state")}
            open_alarms = alarms.unacknowledged(conn)
        finally:
            conn.close()
        self.engine.restore(rows)
        self.monitor.restore(rows)
        for a in open_alarms:
            self.unacked[a["id"]] = _Open(
                a["id"], a["rule_id"], a["raised_at"], a["escalation_level"]
            )
        now = self.clock.time()
        await self._apply(
            now,
            self.engine.resume(now),
            self.monitor.tick(now),
            self._escalations(now),
            [self._unit_config_op(now), self._missed_op(now)] if self.rule_file.haccp.units else [],
        )
        await self.settled()
        self.ready.set()

    async def run(self) -> None:
        await self.open()
        try:
            while True:
                batch = await self._next_batch()
                now = self.clock.time()
                firings: list[Firing] = []
                recs: list[Rec] = []
                ops: list[Op] = []
                for msg in batch:
                    if type(msg) is Reading:
                        firings += self.engine.on_reading(msg, now)
                        recs += self.monitor.on_reading(msg, now)
                        self._note_peak(msg, now)
                    elif type(msg) is Event:
                        firings += self.engine.on_event(msg, now)
                        self._note_event(msg, now, ops)
                firings += self.engine.tick(now)
                recs += self.monitor.tick(now)
                missed = self._next_missed_scan()
                if missed is not None and now >= missed:
                    ops.append(self._missed_op(now))
                await self._apply(now, firings, recs, self._escalations(now), ops)
                self.batches += 1
        finally:
            for t in (self._get, self._sleep, self._committer):
                if t is not None:
                    t.cancel()

    async def stop(self) -> None:
        await self.settled()
        rows = self._dirty()
        if rows:
            await self.writer.transact(lambda conn: _save_state(conn, rows, self.clock.time()))

    async def _next_batch(self) -> list[Any]:
        if self._get is None:
            self._get = asyncio.create_task(self.sub.channel.get_batch(2000))
        wake = _earliest(
            self.engine.next_wake(),
            self.monitor.next_wake(),
            self._next_escalation(),
            self._next_missed_scan(),
        )
        if wake is not None and wake <= self.clock.time():
            await asyncio.sleep(0)
        elif wake is None:
            await asyncio.wait({self._get})
        else:
            if self._sleep is None or self._sleep.done() or self._sleep_until != wake:
                if self._sleep is not None:
                    self._sleep.cancel()
                self._sleep = asyncio.create_task(self.clock.sleep(wake - self.clock.time()))
                self._sleep_until = wake
            await asyncio.wait({self._get, self._sleep}, return_when=asyncio.FIRST_COMPLETED)
        if self._get.done():
            batch = self._get.result()
            self._get = None
            return batch
        return []

    # ---- actions ---------------------------------------------------------------------------

    def _dirty(self) -> dict[str, Any]:
        rows = self.engine.dirty_rows()
        rows.update(self.monitor.dirty_rows())
        return rows

    async def _apply(
        self,
        now: float,
        firings: list[Firing],
        recs: list[Rec],
        escalations: list[tuple[_Open, int]],
        ops: list[Op] | None = None,
    ) -> None:
        ops = list(ops or ())
        after: list[Event] = []
        immediate: list[Command | Event] = []
        for f in firings:
            self._act(f, now, ops, after, immediate)
        for rec in recs:
            ops.append(functools.partial(_append_rec, rec=rec))
            if rec.kind in ("gap", "line_clean_due") or (
                rec.kind in ("cooling", "reheat") and rec.data.get("step") == "failed"
            ):
                after.append(self._record_event(rec))
        for opened, level in escalations:
            self._escalate(opened, level, now, ops, immediate)
        for msg in immediate:
            await self.bus.publish(msg)
        rows = self._dirty()
        if not (ops or rows or after):
            return
        # Group commit: evaluation never waits for an fsync. While one commit is in flight,
        # later batches' work gathers and goes in the next one (the writer keeps the order).
        # Announcements of alarm changes wait for their commit.
        self._ops += ops
        self._rows.update(rows)
        self._after += after
        if self._committer is None or self._committer.done():
            if self._committer is not None and not self._committer.cancelled():
                # The loop only ends by itself when all is committed; anything else is a bug
                # that must stop the service (the supervisor restarts it), never vanish.
                self._committer.result()
            self._committer = asyncio.ensure_future(self._commit_loop())
        elif len(self._ops) > MAX_PENDING_OPS:
            await self.settled()  # back-pressure when the disk cannot keep up

    async def _commit_loop(self) -> None:
        delay = COMMIT_RETRY_FIRST_S
        while self._ops or self._rows or self._after:
            ops, rows, after = self._ops, self._rows, self._after
            self._ops, self._rows, self._after = [], {}, []
            now = self.clock.time()
            if ops or rows:
                job = functools.partial(_run_ops, ops=ops, rows=rows, now=now)
                try:
                    results = await self.writer.transact(job)
                except (sqlite3.Error, StoreError) as exc:
                    # Alarms and HACCP records are never dropped: the batch goes back in
                    # front of what gathered since (state rows: the newer value wins) and
                    # is retried with backoff; evaluation meets back-pressure meanwhile.
                    self._ops = ops + self._ops
                    self._rows = {**rows, **self._rows}
                    self._after = after + self._after
                    self.commit_failures += 1
                    if self.commit_failures == 1 or delay >= COMMIT_RETRY_CAP_S:
                        log.error(
                            "rules: committing %d alarm/HACCP operations failed (%s); "
                            "kept and retried in %.1f s",
                            len(ops),
                            exc,
                            delay,
                        )
                    await self.clock.sleep(delay)
                    delay = min(delay * 2, COMMIT_RETRY_CAP_S)
                    continue
                if self.commit_failures:
                    log.info("rules: commits succeed again after %d failures", self.commit_failures)
                    self.commit_failures = 0
                    delay = COMMIT_RETRY_FIRST_S
                raised = {r.rule_id: r.alarm_id for r in results if isinstance(r, alarms.Raised)}
                if raised:  # the alarm's id, known only now, goes with its announcement
                    after = [
                        dataclasses.replace(
                            ev, data={**ev.data, "alarm_id": raised[ev.data["rule"]]}
                        )
                        if ev.kind == "alarm.raised" and ev.data.get("rule") in raised
                        else ev
                        for ev in after
                    ]
                for res in results:
                    if isinstance(res, alarms.Raised):
                        self.unacked[res.alarm_id] = _Open(res.alarm_id, res.rule_id, res.at, 0)
                    elif isinstance(res, tuple) and res[0] == "missed":
                        after.extend(self._missed_event(unit, d, now) for unit, d in res[1])
                    elif isinstance(res, tuple) and res[0] == "notified" and res[1]:
                        self._notified()
            for ev in after:
                await self.bus.publish(ev)

    async def settled(self) -> None:
        """Wait until everything evaluated so far is committed and announced."""
        while self._committer is not None and not self._committer.done():
            await asyncio.shield(self._committer)
        if self._committer is not None and self._committer.done():
            self._committer.result()  # surface a failed commit

    def _act(
        self,
        f: Firing,
        now: float,
        ops: list[Op],
        after: list[Event],
        immediate: list[Command | Event],
    ) -> None:
        rule = f.rule
        if f.transition == "clear":
            if rule.raises_alarm:
                peak = self.peaks.pop(rule.id, None)
                tell = self.rule_file.notify.tell_clear

                def clear_op(conn: sqlite3.Connection) -> Any:
                    aid = alarms.clear(
                        conn, rule.id, now, as_float(f.value), *(peak or (None, None))
                    )
                    if aid is None or not tell:
                        return None
                    return ladder.on_clear(conn, aid, now, self.venue, self.timezone)

                ops.append(clear_op)
                after.append(
                    Event(
                        "alarm.cleared",
                        now,
                        f"rule:{rule.id}",
                        Severity.INFO,
                        f"{rule.id} cleared",
                        {"rule": rule.id, "value": f.value},
                    )
                )
            return
        for a in rule.actions:
            match a:
                case AlarmAction():
                    self._raise(f, a, now, ops, after)
                case ClearAlarmAction(alarm=other):
                    ops.append(functools.partial(alarms.clear, rule_id=other, at=now, value=None))
                case CommandAction():
                    immediate.append(
                        Command(
                            uuid.uuid4().hex,
                            a.device,
                            a.command,
                            dict(a.args),
                            f"rule:{rule.id}",
                            now,
                            now + COMMAND_TTL_S,
                        )
                    )
                case NotifyAction():
                    immediate.append(
                        Event(
                            "notification",
                            now,
                            f"rule:{rule.id}",
                            _SEVERITY[rule.priority],
                            a.message or rule.id,
                            {"to": a.to, "rule": rule.id, "value": f.value},
                        )
                    )
                case RecordAction():
                    immediate.append(
                        Event(
                            a.kind or "rule.record",
                            now,
                            f"rule:{rule.id}",
                            Severity.INFO,
                            a.message or rule.id,
                            {"rule": rule.id, "value": f.value},
                        )
                    )
                case _:
                    assert_never(a)

    def _raise(
        self, f: Firing, a: AlarmAction, now: float, ops: list[Op], after: list[Event]
    ) -> None:
        rule, t = f.rule, f.rule.trigger
        new = alarms.NewAlarm(
            rule.id,
            rule.unit,
            t.device,
            t.point,
            rule.priority,
            a.message or rule.description or rule.id,
            now,
            f.since,
            as_float(f.value),
            t.limit if t.type == "threshold" else None,
        )
        self.peaks.pop(rule.id, None)

        def raise_op(conn: sqlite3.Connection) -> alarms.Raised | None:
            raised = alarms.raise_alarm(conn, new)
            return raised if raised.created else None

        ops.append(raise_op)
        after.append(
            Event(
                "alarm.raised",
                now,
                f"rule:{rule.id}",
                _SEVERITY[rule.priority],
                new.message,
                {"rule": rule.id, "unit": rule.unit, "value": f.value, "since": f.since},
            )
        )

    def _record_event(self, rec: Rec) -> Event:
        sev = Severity.WARNING if rec.kind == "gap" else Severity.ALARM
        return Event(
            f"haccp.{rec.kind}",
            rec.ts,
            f"haccp:{rec.unit}",
            sev,
            f"{rec.unit}: {rec.kind}",
            dict(rec.data),
        )

    def _note_peak(self, r: Reading, now: float) -> None:
        for rule in self.engine.by_point.get((r.device_id, r.point), ()):
            if not (rule.raises_alarm and self.engine.state[rule.id].active):
                continue
            v = as_float(r.value)
            if v is None:
                continue
            cur = self.peaks.get(rule.id)
            up = rule.trigger.below is None
            if cur is None or (v > cur[0] if up else v < cur[0]):
                self.peaks[rule.id] = (v, now)

    def _note_event(self, e: Event, now: float, ops: list[Op]) -> None:
        if e.kind == "line_clean.completed":
            unit = str(e.data.get("unit", e.source))
            self.monitor.on_line_clean(unit, e.ts)

    def _notified(self) -> None:
        if self.on_notify is not None:
            self.on_notify()

    # ---- missed checks ---------------------------------------------------------------------

    def _next_missed_scan(self) -> float | None:
        """The first check deadline after the last scan (today's, else tomorrow's); computed
        once per scan, not per batch."""
        if self._missed_next is None or self._missed_next[0] != self._missed_scan_at:
            self._missed_next = (self._missed_scan_at, self._compute_missed_scan())
        return self._missed_next[1]

    def _compute_missed_scan(self) -> float | None:
        hf = self.rule_file.haccp
        if not hf.units:
            return None
        day = due.venue_day(self._missed_scan_at, self.timezone)
        for d in (day, due.venue_day(day.end + 1, self.timezone)):
            later = [
                t
                for t in due.deadlines(hf.check_specs, d, self.timezone)
                if t > self._missed_scan_at
            ]
            if later:
                return later[0]
        return None

    def _unit_config_op(self, now: float) -> Op:
        units = tuple(u for u in self.rule_file.haccp.units if u.kind != "line_clean")

        def op(conn: sqlite3.Connection) -> None:
            unit_config.record_changes(conn, units, self.region, now, self.timezone)

        return op

    def _missed_op(self, now: float) -> Op:
        self._missed_scan_at = now
        hf = self.rule_file.haccp

        def op(conn: sqlite3.Connection) -> Any:
            found = due.missed_records(conn, hf.units, hf.check_specs, now, self.timezone)
            return ("missed", found) if found else None

        return op

    def _missed_event(self, unit: str, d: dict[str, Any], now: float) -> Event:
        what = f"{d['check_label']} ({d['label']})" if d["label"] else d["check_label"]
        return Event(
            "haccp.missed_check",
            now,
            f"haccp:{unit}",
            Severity.WARNING,
            f"{what} not done by its deadline",
            dict(d),
        )

    # ---- escalation -------------------------------------------------------------------------

    def _next_escalation(self) -> float | None:
        steps = self.rule_file.escalation.steps
        times = [
            o.raised_at + steps[o.level].after_s
            for o in self.unacked.values()
            if o.level < len(steps)
        ]
        return min(times) if times else None

    def _escalations(self, now: float) -> list[tuple[_Open, int]]:
        steps = self.rule_file.escalation.steps
        due: list[tuple[_Open, int]] = []
        for o in self.unacked.values():
            while o.level < len(steps) and now >= o.raised_at + steps[o.level].after_s:
                due.append((o, o.level))
                o.level += 1
        return due

    def _escalate(
        self, o: _Open, level: int, now: float, ops: list[Op], immediate: list[Command | Event]
    ) -> None:
        esc = self.rule_file.escalation
        step = esc.steps[level].action
        ops.append(lambda conn: alarms.escalate(conn, o.alarm_id, level + 1, now, step))
        recipients = self.rule_file.step_recipients(level)
        if recipients:
            ops.append(
                lambda conn: ladder.on_escalation(
                    conn, o.alarm_id, level + 1, recipients, now, self.venue, self.timezone
                )
            )
        data = {"alarm_id": o.alarm_id, "rule": o.rule_id, "level": level + 1, "step": step}
        minutes = (now - o.raised_at) / 60
        if step == "buzzer" and esc.buzzer_device:
            immediate.append(
                Command(
                    uuid.uuid4().hex,
                    esc.buzzer_device,
                    esc.buzzer_command,
                    {},
                    f"alarm:{o.alarm_id}",
                    now,
                    now + COMMAND_TTL_S,
                )
            )
        elif step == "buzzer":
            log.warning(
                "rules: alarm %d escalates to the buzzer but none is configured", o.alarm_id
            )
        to = "manager" if step == "notify_manager" else "ui"
        immediate.append(
            Event(
                "notification",
                now,
                f"alarm:{o.alarm_id}",
                Severity.ALARM,
                f"alarm {o.alarm_id} ({o.rule_id}) unacknowledged for {minutes:.0f} min",
                {"to": to, **data},
            )
        )
        if level > 0:
            immediate.append(
                Event(
                    "alarm.unacknowledged",
                    now,
                    f"alarm:{o.alarm_id}",
                    Severity.ALARM,
                    f"alarm {o.alarm_id} not acknowledged",
                    data,
                )
            )

    # ---- staff actions (from the API) -------------------------------------------------------

    async def acknowledge(self, alarm_id: int, by: str) -> dict[str, Any]:
        await self.settled()  # staff act on what is on record, in order after it
        now = self.clock.time()
        tell = self.rule_file.notify.tell_ack

        def op(conn: sqlite3.Connection) -> tuple[dict[str, Any], int]:
            a = alarms.acknowledge(conn, alarm_id, by, now)
            n = ladder.on_ack(conn, alarm_id, now, self.venue, self.timezone)[1] if tell else 0
            return a, n

        a: dict[str, Any]
        a, told = await self.writer.transact(op)
        if told:
            self._notified()
        self.unacked.pop(alarm_id, None)
        await self.bus.publish(
            Event(
                "alarm.acknowledged",
                now,
                f"alarm:{alarm_id}",
                Severity.INFO,
                f"alarm {alarm_id} acknowledged by {by}",
                {"alarm_id": alarm_id, "by": by},
            )
        )
        return a

    async def corrective_action(
        self, alarm_id: int, by: str, action: str, disposition: str, verification: float | None
    ) -> dict[str, Any]:
        await self.settled()
        now = self.clock.time()
        a: dict[str, Any] = await self.writer.transact(
            lambda conn: alarms.corrective_action(
                conn, alarm_id, by, now, action, disposition, verification
            )
        )
        await self.bus.publish(
            Event(
                "alarm.corrective_action",
                now,
                f"alarm:{alarm_id}",
                Severity.INFO,
                f"alarm {alarm_id}: {action}",
                {"alarm_id": alarm_id, "by": by, "disposition": disposition},
            )
        )
        return a

    async def manual_check(self, unit: str, check: str, by: str, data: dict[str, Any]) -> int:
        now = self.clock.time()
        body = {"check": check, "by": by, **data}
        seq: int = await self.writer.transact(
            lambda conn: chain.append(conn, now, unit, "check", body)
        )
        if check == "line_clean":
            self.monitor.on_line_clean(unit, now)
            rows = self.monitor.dirty_rows()
            await self.writer.transact(lambda conn: _save_state(conn, rows, now))
        if body.get("passed") is False:
            failed = ", ".join(str(i) for i in body.get("failed", ()))
            await self.bus.publish(
                Event(
                    "haccp.check_failed",
                    now,
                    f"haccp:{unit}",
                    Severity.ALARM,
                    f"{unit}: {check} check failed ({failed}): record a corrective action",
                    {"seq": seq, "check": check, "unit": unit, "failed": body.get("failed", [])},
                )
            )
        return seq

    async def check_action(
        self, seq: int, by: str, action: str, disposition: str, verification: float | None
    ) -> int:
        """The corrective action that completes a failed check (an excursion found by hand)."""
        await self.settled()
        now = self.clock.time()

        def op(conn: sqlite3.Connection) -> int:
            rec = chain.record(conn, seq)
            if rec is None or rec.kind != "check":
                raise alarms.AlarmError(f"no check record {seq}")
            if rec.data.get("passed") is not False:
                raise alarms.AlarmError(f"check {seq} passed: there is nothing to correct")
            done = [
                r
                for r in chain.records(conn, kind="check_action")
                if r.data.get("check_seq") == seq
            ]
            if done:
                raise alarms.AlarmError(
                    f"check {seq} already has a corrective action (record {done[0].seq})"
                )
            if disposition not in alarms.DISPOSITIONS:
                raise alarms.AlarmError(
                    f"disposition must be one of {', '.join(alarms.DISPOSITIONS)}"
                )
            body = {
                "check_seq": seq,
                "check": rec.data.get("check"),
                "failed": rec.data.get("failed", []),
                "action": action,
                "disposition": disposition,
                "verification": verification,
                "by": by,
            }
            return chain.append(conn, now, rec.unit, "check_action", body)

        out: int = await self.writer.transact(op)
        return out

    async def signoff(self, period: Any, by: str, staff_id: str, notes: str = "") -> dict[str, Any]:
        """A manager's sign-off of a period, with what they reviewed, as a chain record."""
        from rules.haccp import signoff

        await self.settled()
        now = self.clock.time()
        if period.start > now:
            raise alarms.AlarmError(f"{period.name} has not started yet")

        def op(conn: sqlite3.Connection) -> dict[str, Any]:
            for r in chain.records(conn, kind="signoff"):
                if r.data.get("period") == period.name:
                    raise alarms.AlarmError(
                        f"{period.name} was already signed off by {r.data.get('by')}"
                    )
            review = signoff.review(chain.records(conn, period.start, period.end), period)
            body = {
                "period": period.name,
                "from": period.start,
                "to": period.end,
                "by": by,
                "staff_id": staff_id,
                "role": "manager",
                "review": review,
            }
            if notes:
                body["notes"] = notes
            seq = chain.append(conn, now, signoff.VENUE, "signoff", body)
            return {"seq": seq, **body}

        out: dict[str, Any] = await self.writer.transact(op)
        return out


def _append_rec(conn: sqlite3.Connection, rec: Rec) -> int:
    return chain.append(conn, rec.ts, rec.unit, rec.kind, rec.data)


def _earliest(*ts: float | None) -> float | None:
    vals = [t for t in ts if t is not None]
    return min(vals) if vals else None


def _save_state(conn: sqlite3.Connection, rows: dict[str, Any], now: float) -> None:
    conn.executemany(
        "INSERT INTO rule_state (key, value, updated) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated=excluded.updated",
        [(k, json.dumps(v, sort_keys=True), now) for k, v in rows.items()],
    )


def _run_ops(
    conn: sqlite3.Connection, ops: list[Op], rows: dict[str, Any], now: float
) -> list[Any]:
    results = [op(conn) for op in ops]
    if rows:
        _save_state(conn, rows, now)
    return results
