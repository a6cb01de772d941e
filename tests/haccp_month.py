"""A month of a venue's HACCP chain, as the agent records it, for report tests and the docs'
sample report: two units described in the chain, a reading every 15 minutes with defrost peaks,
one excursion with its acknowledgement and corrective action, a gap, daily checks (one probe
reading out of limit and actioned, one closing check missed), weekly calibrations and weekly
manager sign-offs except the last."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import zoneinfo

from rules.haccp import chain
from rules.haccp.checks import DEFAULT_CHECKS, evaluate, spec_for
from rules.haccp.signoff import period_of, review

TZ = "Europe/London"
ZONE = zoneinfo.ZoneInfo(TZ)
START = dt.datetime(2026, 3, 1, tzinfo=ZONE).timestamp()
END = dt.datetime(2026, 4, 1, tzinfo=ZONE).timestamp()
SAM = "Sam Okafor (12)"
JO = "Jo Bianchi (jo)"
LONG_ACTION = (
    "Moved all dairy and cooked meats to the reach-in fridge, called Coldline Refrigeration "
    "(job 4471), door seal found torn and replaced by the engineer, unit back below 5 °C at "
    "15:05; cream and two trays of cooked ham discarded as a precaution"
)
UNITS = {
    "walk-in": {
        "label": "Walk-in cold room",
        "type": "cold_hold",
        "device": "walkin",
        "point": "room_temp",
        "max_c": 8.0,
        "min_c": None,
        "delay_s": 1800.0,
        "record_every_s": 900.0,
        "region": "uk",
        "timezone": TZ,
        "suppression": ["defrost", "door", "start-up"],
    },
    "freezer": {
        "label": "Chest freezer",
        "type": "freezer",
        "device": "freezer1",
        "point": "room_temp",
        "max_c": -15.0,
        "min_c": None,
        "delay_s": 1800.0,
        "record_every_s": 900.0,
        "region": "uk",
        "timezone": TZ,
        "suppression": ["start-up"],
    },
}
EXCURSION_DAY, GAP_DAY, FAILED_PROBE_DAY, MISSED_DAY = 10, 12, 15, 20


def at(day: int, hour: float) -> float:
    d = dt.datetime(2026, 3, day, tzinfo=ZONE)
    return d.timestamp() + hour * 3600


def fill(conn: sqlite3.Connection, seed: int = 7) -> int:
    """Append the month to the store's chain (one transaction); returns the record count."""
    rng = random.Random(seed)
    events: list[tuple[float, str, str, dict[str, object]]] = []
    for uid, cfg in UNITS.items():
        events.append((START - 60, uid, "unit_config", cfg))
    t = START
    while t < END:
        t += 900
        for uid in UNITS:
            if uid == "freezer" and at(GAP_DAY, 2) < t <= at(GAP_DAY, 4.5):
                continue
            local_h = dt.datetime.fromtimestamp(t, ZONE).hour
            if uid == "walk-in":
                base = 3.4 + rng.uniform(-0.6, 0.6)
                hi = base + 0.4
                defrost = local_h % 6 == 2 and dt.datetime.fromtimestamp(t, ZONE).minute == 15
                if defrost:
                    hi = 9.0 + rng.uniform(0, 1.0)  # a defrost peak, suppressed
                if at(EXCURSION_DAY, 14) < t <= at(EXCURSION_DAY, 15.25):
                    base = hi = 9.2 + rng.uniform(0, 2.0)
            else:
                base = -19.5 + rng.uniform(-0.8, 0.8)
                hi = base + 0.5
                defrost = False
            extra = {"suppressed": ["defrost"]} if defrost else {}
            events.append(
                (
                    t,
                    uid,
                    "reading",
                    {
                        "device": UNITS[uid]["device"],
                        "point": "room_temp",
                        "value": round(base, 1),
                        "at": t - 30,
                        "min": round(base - 0.3, 1),
                        "max": round(hi, 1),
                        "n": 15,
                        **extra,
                    },
                )
            )
    events.append(
        (at(GAP_DAY, 4.5), "freezer", "gap", {"from": at(GAP_DAY, 2), "to": at(GAP_DAY, 4.5)})
    )
    ex = {"alarm_id": 1}
    events += [
        (
            at(EXCURSION_DAY, 14.5),
            "walk-in",
            "excursion_start",
            {
                **ex,
                "rule": "walk-in-high",
                "device": "walkin",
                "point": "room_temp",
                "value": 9.4,
                "limit": 8.0,
                "since": at(EXCURSION_DAY, 14),
                "message": "Walk-in cold room above 8 °C",
            },
        ),
        (
            at(EXCURSION_DAY, 14.6),
            "walk-in",
            "acknowledged",
            {**ex, "by": SAM, "minutes_to_ack": 6.0},
        ),
        (
            at(EXCURSION_DAY, 14.9),
            "walk-in",
            "corrective_action",
            {
                **ex,
                "by": SAM,
                "limit": 8.0,
                "peak": 11.4,
                "action": LONG_ACTION,
                "disposition": "discarded",
                "verification": 4.6,
            },
        ),
        (
            at(EXCURSION_DAY, 15.25),
            "walk-in",
            "excursion_end",
            {
                **ex,
                "rule": "walk-in-high",
                "value": 6.9,
                "peak": 11.4,
                "peak_at": at(10, 14.7),
                "limit": 8.0,
                "minutes_over_limit": 75.0,
            },
        ),
    ]
    opening, probe, closing, calib = (
        spec_for(DEFAULT_CHECKS, k) for k in ("opening", "probe", "closing", "calibration")
    )
    assert opening and probe and closing and calib
    for day in range(1, 32):
        for uid, cfg in UNITS.items():
            who = SAM if day % 2 else JO
            events.append(
                (
                    at(day, 8.5),
                    uid,
                    "check",
                    {"check": "opening", "by": who, **evaluate(opening, {}, all_passed=True)},
                )
            )
            v = (
                22.0
                if (day == FAILED_PROBE_DAY and uid == "walk-in")
                else (3.8 if uid == "walk-in" else -19.0)
            )
            events.append(
                (
                    at(day, 12.5),
                    uid,
                    "check",
                    {
                        "check": "probe",
                        "by": who,
                        **evaluate(probe, {"value": v}, (None, float(cfg["max_c"]))),
                    },  # type: ignore[arg-type]
                )
            )
            if day == MISSED_DAY and uid == "walk-in":
                events.append(
                    (
                        at(day, 23),
                        uid,
                        "missed_check",
                        {
                            "check": "closing",
                            "check_label": "Closing checks",
                            "day": f"2026-03-{day:02d}",
                            "due_at": at(day, 23),
                            "label": cfg["label"],
                        },
                    )
                )
            else:
                events.append(
                    (
                        at(day, 22.5),
                        uid,
                        "check",
                        {"check": "closing", "by": who, **evaluate(closing, {}, all_passed=True)},
                    )
                )
        if day % 7 == 2:
            events.append(
                (
                    at(day, 9),
                    "thermometer",
                    "check",
                    {"check": "calibration", "by": JO, **evaluate(calib, {"value": 0.2})},
                )
            )
    events.sort(key=lambda e: e[0])
    conn.execute("BEGIN")
    n = 0
    failed_seq = None
    for ts, uid, kind, data in events:
        seq = chain.append(conn, ts, uid, kind, data)
        n += 1
        if kind == "check" and data.get("passed") is False:
            failed_seq = seq
            chain.append(
                conn,
                ts + 600,
                uid,
                "check_action",
                {
                    "check_seq": seq,
                    "check": "probe",
                    "failed": ["value"],
                    "action": (
                        "Probe re-checked in the food: 22 °C was the door-side tray; tray discarded"
                    ),
                    "disposition": "discarded",
                    "verification": 4.1,
                    "by": JO,
                },
            )
            n += 1
    assert failed_seq is not None
    # Weekly sign-offs by the manager, except the month's last full week.
    recs = list(chain.records(conn))
    week = period_of(START + 3600, TZ)
    while week.end <= END:
        if week.name != "2026-W13":
            body = {
                "period": week.name,
                "from": week.start,
                "to": week.end,
                "by": JO,
                "staff_id": "jo",
                "role": "manager",
                "review": review(recs, week),
            }
            chain.append(conn, week.end + 9 * 3600, "venue", "signoff", body)
            n += 1
        week = period_of(week.end + 1, TZ)
    conn.execute("COMMIT")
    return n
