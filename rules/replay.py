"""Replay recorded readings through a rule set with a simulated clock: what would have fired."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable

from edge_agent.messages import Reading
from rules.engine import Firing, RuleEngine
from rules.model import RuleFile


def replay_firings(rf: RuleFile, readings: Iterable[Reading], tz: str = "UTC") -> list[Firing]:
    """Time is the readings' own: timers due between two readings fire at their instant."""
    rs = list(readings)
    start = rs[0].ts if rs else 0.0
    engine = RuleEngine(rf.rules, tz, started_at=start)
    out = engine.resume(start)
    for r in rs:
        while (wake := engine.next_wake()) is not None and wake <= r.ts:
            out += engine.tick(wake)
        out += engine.on_reading(r, r.ts)
    if rs:
        out += engine.tick(rs[-1].ts)
    return out


def replay(rf: RuleFile, readings: Iterable[Reading], tz: str = "UTC") -> list[str]:
    zone = zoneinfo.ZoneInfo(tz)

    def fmt(ts: float | None) -> str:
        return (
            "-" if ts is None else dt.datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S")
        )

    lines = []
    for f in replay_firings(rf, readings, tz):
        what = "FIRE " if f.transition == "fire" else "CLEAR"
        since = f" since {fmt(f.since)}" if f.since is not None and f.transition == "fire" else ""
        actions = ",".join(a.type for a in f.rule.actions)
        lines.append(f"{fmt(f.at)} {what} {f.rule.id} value={f.value}{since} -> {actions}")
    return lines
