"""Line a restored store's outbox up with what the cloud already holds.

A backup is a past state: the cloud may hold records this box wrote after the backup was taken
and synced before the old store was lost. The restored outbox would hand out those sequence
numbers again, and the cloud, idempotent on (box, stream, seq), would drop the new records as
duplicates. So before the restored agent writes anything, each stream's next seq moves past the
cloud's watermark, and pending records the cloud already holds (the same records: the backup is
the same history) are dropped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cloud_sync.errors import SyncError
from cloud_sync.identity import BoxIdentity
from cloud_sync.streams import spec


@dataclass(frozen=True)
class StreamRealigned:
    stream: str
    box_next_seq: int  # before
    cloud_watermark: int
    dropped: int  # pending records the cloud already had
    skipped: int  # seqs the cloud holds that this store never issued (written after the backup)


def realign(conn: sqlite3.Connection, watermarks: dict[str, int]) -> list[StreamRealigned]:
    out: list[StreamRealigned] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stream, w in sorted(watermarks.items()):
            row = conn.execute(
                "SELECT next_seq FROM outbox_streams WHERE stream=?", (stream,)
            ).fetchone()
            nxt = int(row[0]) if row else 1
            dropped = conn.execute(
                "DELETE FROM outbox WHERE stream=? AND seq<=? RETURNING length(payload)",
                (stream, w),
            ).fetchall()
            if row is None:
                conn.execute(
                    "INSERT INTO outbox_streams (stream, next_seq, acked_seq, priority) "
                    "VALUES (?, ?, ?, ?)",
                    (stream, w + 1, w, spec(stream).priority),
                )
            else:
                conn.execute(
                    "UPDATE outbox_streams SET next_seq=max(next_seq, ?), "
                    "acked_seq=max(acked_seq, ?), rows=max(0, rows-?), "
                    "bytes=max(0, bytes-?) WHERE stream=?",
                    (w + 1, w, len(dropped), sum(n for (n,) in dropped), stream),
                )
            out.append(StreamRealigned(stream, nxt, w, len(dropped), max(0, w + 1 - nxt)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return out


async def fetch_watermarks(identity: BoxIdentity, timeout_s: float = 20.0) -> dict[str, int]:
    """The cloud's watermarks for this box, over a signed request (SyncError if refused)."""
    import json
    import time

    import aiohttp

    from cloud_sync import crypto
    from cloud_sync.signing import request_message

    path = f"/v1/boxes/{identity.box_id}/watermarks"
    ts = repr(time.time())
    sig = crypto.b64(identity.sign(request_message("GET", path, ts, b"")))
    headers = {"X-Box-Time": ts, "X-Box-Signature": sig}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s,
        s.get(f"{identity.cloud_url}{path}", headers=headers) as r,
    ):
        doc = json.loads(await r.text())
        if r.status != 200:
            raise SyncError(f"cloud refused the watermark request ({r.status}): {doc}")
    return {str(k): int(v) for k, v in dict(doc["streams"]).items()}
