"""Retention: old raw telemetry is rolled up into fixed buckets (min/max/avg/count), then deleted.

Only numeric telemetry is rolled up; events are kept for their own, longer retention, because
they carry the food-safety history an inspector may ask for years later.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    raw_days: float
    rollup_days: float
    rollup_bucket_s: float
    event_days: float


@dataclass(frozen=True, slots=True)
class RetentionResult:
    rolled_up: int
    raw_deleted: int
    rollups_deleted: int
    events_deleted: int


_ROLLUP = """
INSERT INTO readings_rollup (series_id, bucket, bucket_s, min, max, avg, count)
SELECT series_id, CAST(ts / :b AS INTEGER) * :b AS bucket, :b, min(value), max(value),
       avg(value), count(*)
FROM readings
WHERE series_id = :sid AND ts < :cutoff AND typeof(value) IN ('integer', 'real')
GROUP BY bucket
ON CONFLICT(series_id, bucket) DO UPDATE SET
    min = min(readings_rollup.min, excluded.min),
    max = max(readings_rollup.max, excluded.max),
    avg = (readings_rollup.avg * readings_rollup.count + excluded.avg * excluded.count)
          / (readings_rollup.count + excluded.count),
    count = readings_rollup.count + excluded.count
"""


def apply_retention(
    conn: sqlite3.Connection, now: float, policy: RetentionPolicy
) -> RetentionResult:
    """One pass, in one transaction; run on the writer's connection."""
    day = 86_400.0
    bucket = policy.rollup_bucket_s
    # Align the raw cutoff to a bucket edge so a bucket is never half rolled up.
    raw_cutoff = (int((now - policy.raw_days * day) / bucket)) * bucket
    rolled = raw_deleted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Per series, so every statement is a range scan of the (series_id, ts) index rather
        # than a scan of the whole table (which would cost seconds at every start on a Pi).
        for (sid,) in conn.execute("SELECT id FROM series").fetchall():
            rolled += conn.execute(
                _ROLLUP, {"b": bucket, "cutoff": raw_cutoff, "sid": sid}
            ).rowcount
            raw_deleted += conn.execute(
                "DELETE FROM readings WHERE series_id = ? AND ts < ?", (sid, raw_cutoff)
            ).rowcount
        rollups_deleted = conn.execute(
            "DELETE FROM readings_rollup WHERE bucket < ?", (now - policy.rollup_days * day,)
        ).rowcount
        events_deleted = conn.execute(
            "DELETE FROM events WHERE ts < ?", (now - policy.event_days * day,)
        ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    result = RetentionResult(rolled, raw_deleted, rollups_deleted, events_deleted)
    if raw_deleted or rollups_deleted or events_deleted:
        log.info("store retention: %s", result)
    return result
