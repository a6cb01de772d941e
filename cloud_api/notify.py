"""The cloud's second notification path, and the alarm for a box that has fallen silent.

An alarm raised on a box reaches the cloud when it syncs. If, after `second_path_after_s`, the
box has not reported a notification sent for it, nor an acknowledgement or a clear, the cloud
tells the venue's recipients itself (the box may have no way out but its sync link). A box not
heard from for `silent_after_s` is a food-safety risk too: nobody would know its fridges are
warm, so the cloud tells the venue's recipients once per silence.

Rows are durable and unique per (venue, key, recipient); delivery goes through Apprise with
the same backoff as the box; the cloud's worker runs `scan` then `deliver` on an interval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cloud_api import db
from cloud_api.errors import CloudError
from rules.notify.policy import backoff
from rules.notify.sender import Sender, apprise_send

log = logging.getLogger(__name__)

LOOKBACK_S = 86400.0  # alarms older than this are not chased again


class NotifyConfigError(CloudError, ValueError):
    pass


@dataclass(frozen=True)
class VenueNotify:
    venue: str
    recipients: tuple[tuple[str, tuple[str, ...]], ...]
    silent_after_s: float = 1800.0
    second_path_after_s: float = 600.0


def parse_config(venue: str, doc: Any) -> VenueNotify:
    if not isinstance(doc, dict):
        raise NotifyConfigError("the notify config is a JSON object")
    recips = doc.get("recipients")
    if not isinstance(recips, list) or not recips:
        raise NotifyConfigError("recipients: a non-empty list of {id, urls}")
    out = []
    for i, r in enumerate(recips):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
            raise NotifyConfigError(f"recipients[{i}]: needs an id")
        urls = r.get("urls")
        if (
            not isinstance(urls, list)
            or not urls
            or not all(isinstance(u, str) and "://" in u for u in urls)
        ):
            raise NotifyConfigError(f"recipients[{i}]: urls must be a list of Apprise URLs")
        out.append((r["id"], tuple(urls)))
    try:
        silent = float(doc.get("silent_after_s", 1800.0))
        second = float(doc.get("second_path_after_s", 600.0))
    except (TypeError, ValueError) as exc:
        raise NotifyConfigError("silent_after_s and second_path_after_s are seconds") from exc
    if not (60 <= silent <= 7 * 86400 and 0 <= second <= 86400):
        raise NotifyConfigError("silent_after_s 60 s..7 days, second_path_after_s 0..1 day")
    return VenueNotify(venue, tuple(out), silent, second)


def save_config(engine: sa.Engine, cfg: VenueNotify) -> None:
    row = {
        "venue_id": cfg.venue,
        "recipients": json.dumps([{"id": i, "urls": list(u)} for i, u in cfg.recipients]),
        "silent_after_s": cfg.silent_after_s,
        "second_path_after_s": cfg.second_path_after_s,
    }
    with engine.begin() as c:
        c.execute(db.upsert(engine, db.venue_notify, ["venue_id"], row))


def configs(c: sa.Connection) -> list[VenueNotify]:
    out = []
    for r in c.execute(sa.select(db.venue_notify)).mappings():
        doc = {
            "recipients": json.loads(r["recipients"]),
            "silent_after_s": r["silent_after_s"],
            "second_path_after_s": r["second_path_after_s"],
        }
        out.append(parse_config(r["venue_id"], doc))
    return out


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class CloudNotifier:
    def __init__(
        self,
        engine: sa.Engine,
        clock: Callable[[], float],
        sender: Sender = apprise_send,
        retry_base_s: float = 30.0,
        retry_cap_s: float = 1800.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.sender = sender
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s

    # ---- what needs telling ------------------------------------------------------------------

    def scan(self, now: float | None = None) -> int:
        """Queue notifications for silent boxes and alarms the box has not got through."""
        now = self.clock() if now is None else now
        added = 0
        with self.engine.begin() as c:
            for cfg in configs(c):
                for key, title, body in self._silent(c, cfg, now) + self._unhandled(c, cfg, now):
                    added += self._enqueue(c, cfg, key, title, body, now)
        return added

    def _silent(self, c: sa.Connection, cfg: VenueNotify, now: float) -> list[tuple[str, str, str]]:
        bt = db.boxes
        out = []
        for box, last in c.execute(
            sa.select(bt.c.id, bt.c.last_seen).where(bt.c.venue_id == cfg.venue)
        ):
            if last is None or now - last < cfg.silent_after_s:
                continue
            minutes = (now - last) / 60
            out.append(
                (
                    f"silent:{box}:{int(last)}",
                    f"[{cfg.venue}] box silent for {minutes:.0f} min",
                    f"The venue's BeerFlow box {box} was last heard from at {_when(last)}. "
                    "Nobody is told if its fridges warm up while it is silent: check its power "
                    "and network, and check the fridges by hand.",
                )
            )
        return out

    def _unhandled(
        self, c: sa.Connection, cfg: VenueNotify, now: float
    ) -> list[tuple[str, str, str]]:
        rt = db.records
        rows = c.execute(
            sa.select(rt.c.box_id, rt.c.box_ts, rt.c.kind, rt.c.body).where(
                rt.c.venue_id == cfg.venue,
                rt.c.stream.in_(("alarms", "events")),
                rt.c.box_ts >= now - LOOKBACK_S,
                rt.c.kind.in_(
                    ("alarm.raised", "alarm.acknowledged", "alarm.cleared", "notify.sent")
                ),
            )
        ).all()
        raised: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
        done: set[tuple[str, int]] = set()
        cleared: dict[tuple[str, str], float] = {}
        for box, ts, kind, body in rows:
            try:
                data = json.loads(body).get("data") or {}
            except ValueError:
                continue
            aid = data.get("alarm_id")
            if kind == "alarm.raised" and isinstance(aid, int):
                raised[(box, aid)] = (ts, data)
            elif kind == "alarm.cleared" and isinstance(data.get("rule"), str):
                cleared[(box, data["rule"])] = max(ts, cleared.get((box, data["rule"]), ts))
            elif isinstance(aid, int):  # acknowledged, or the box's own notification got out
                done.add((box, aid))
        out = []
        for (box, aid), (ts, data) in raised.items():
            if (box, aid) in done or cleared.get((box, str(data.get("rule"))), -1.0) >= ts:
                continue
            if now - ts < cfg.second_path_after_s:
                continue
            unit = data.get("unit") or data.get("rule")
            out.append(
                (
                    f"alarm:{box}:{aid}",
                    f"[{cfg.venue}] ALARM {unit}: not acknowledged, not notified by the box",
                    f"Alarm {aid} ({data.get('rule')}) was raised at {_when(ts)} on box {box}, "
                    f"value {data.get('value')}. The box has not reported telling anyone and "
                    "nobody has acknowledged it. Check the unit now.",
                )
            )
        return out

    def _enqueue(
        self, c: sa.Connection, cfg: VenueNotify, key: str, title: str, body: str, now: float
    ) -> int:
        t = db.cloud_notifications
        added = 0
        for rid, _ in cfg.recipients:
            res = c.execute(
                db.insert_ignore(self.engine, t),
                [
                    {
                        "venue_id": cfg.venue,
                        "key": key,
                        "recipient": rid,
                        "title": title,
                        "body": body,
                        "state": "pending",
                        "attempts": 0,
                        "created": now,
                        "next_at": now,
                        "last_error": "",
                    }
                ],
            )
            added += res.rowcount or 0
        return added

    # ---- delivery ----------------------------------------------------------------------------

    async def deliver(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        due, urls = await asyncio.to_thread(self._due, now)
        sent = 0
        for row in due:
            rurls = urls.get((row["venue_id"], row["recipient"]))
            if not rurls:
                ok, why = False, "recipient no longer configured"
            else:
                try:
                    ok, why = await self.sender(rurls, row["title"], row["body"])
                except Exception as exc:  # the attempt's outcome, never the worker's end
                    ok, why = False, type(exc).__name__
            await asyncio.to_thread(self._mark, row, ok, why, now)
            if ok:
                sent += 1
            else:
                log.warning(
                    "notify: %s to %s for %s failed: %s",
                    row["key"],
                    row["recipient"],
                    row["venue_id"],
                    why,
                )
        return sent

    def _due(
        self, now: float
    ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], tuple[str, ...]]]:
        t = db.cloud_notifications
        with self.engine.connect() as c:
            rows = [
                dict(r)
                for r in c.execute(
                    sa.select(t).where(t.c.state == "pending", t.c.next_at <= now).order_by(t.c.id)
                ).mappings()
            ]
            urls = {(cfg.venue, rid): u for cfg in configs(c) for rid, u in cfg.recipients}
        return rows, urls

    def _mark(self, row: dict[str, Any], ok: bool, why: str, now: float) -> None:
        t = db.cloud_notifications
        attempts = int(row["attempts"]) + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": why[:500]}
        if ok:
            values.update(state="sent", sent_at=now)
        elif now - row["created"] >= 86400:
            values.update(state="failed")
        else:
            values["next_at"] = now + backoff(attempts, self.retry_base_s, self.retry_cap_s)
        with self.engine.begin() as c:
            c.execute(t.update().where(t.c.id == row["id"]).values(**values))

    def rows(self, venue: str) -> list[dict[str, Any]]:
        t = db.cloud_notifications
        with self.engine.connect() as c:
            return [
                {k: v for k, v in dict(r).items() if k != "body"}
                for r in c.execute(
                    sa.select(t).where(t.c.venue_id == venue).order_by(t.c.id)
                ).mappings()
            ]

    async def run(self, every_s: float = 30.0) -> None:
        while True:
            try:
                await asyncio.to_thread(self.scan)
                await self.deliver()
            except sa.exc.SQLAlchemyError as exc:  # the next round tries again
                log.error("notify: a round failed: %s", exc)
            await asyncio.sleep(every_s)
