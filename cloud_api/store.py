"""The cloud's business logic over the database: claims, enrolment, idempotent ingest, queries.

Everything here is synchronous and runs on one worker thread of the aiohttp app, so the
embedded SQLite sees one writer; PostgreSQL would take more but does not need to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cloud_api import db, haccp
from cloud_api.errors import CloudError
from cloud_api.keys import CloudKeys
from cloud_api.metrics import IngestObservation
from cloud_sync import crypto
from cloud_sync.envelope import (
    MAX_SEQ,
    EnvelopeHeader,
    OpenedRecord,
    open_records,
    read_header,
)
from cloud_sync.errors import EnvelopeError
from cloud_sync.signing import canonical

log = logging.getLogger("cloud_api.security")


SECURITY_WINDOW_S = 60.0


class Refused(CloudError):
    """A request refused on purpose; status is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class BoxRow:
    id: str
    tenant_id: str
    venue_id: str
    sign_pub: bytes
    kx_pub: bytes


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


class CloudStore:
    def __init__(
        self, engine: sa.Engine, keys: CloudKeys, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.now = clock
        self._boxes: dict[str, BoxRow] = {}
        self._keys: dict[tuple[str, int], bytes] = {}
        self._epochs: dict[tuple[str, str], int] = {}
        self._security_rows: dict[tuple[str, str], tuple[int, float]] = {}
        self._ins_records_sql = db.insert_ignore_sql(engine, db.records)
        self._ins_losses = db.insert_ignore(engine, db.losses)
        # Told of every stored envelope (the metrics); runs on the worker thread, must be cheap.
        self.on_ingest: Callable[[IngestObservation], None] | None = None

    def ping(self) -> None:
        """One round trip to the database; raises if it cannot answer (the readiness probe)."""
        with self.engine.connect() as c:
            c.execute(sa.text("SELECT 1"))

    # ---- tenants, venues, claims -------------------------------------------------------

    def ensure_venue(self, tenant: str, venue: str) -> None:
        with self.engine.begin() as c:
            c.execute(db.insert_ignore(self.engine, db.tenants), [{"id": tenant, "name": tenant}])
            row = c.execute(sa.select(db.venues.c.tenant_id).where(db.venues.c.id == venue)).first()
            if row is None:
                c.execute(db.venues.insert(), [{"id": venue, "tenant_id": tenant, "name": venue}])
            elif row[0] != tenant:
                raise Refused(409, f"venue {venue!r} belongs to another tenant")

    def create_claim(self, tenant: str, venue: str, ttl_s: float = 7 * 86400) -> str:
        self.ensure_venue(tenant, venue)
        # 16 characters from a 32-letter alphabet: 80 bits, easy to type on a box's console.
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        raw = "".join(secrets.choice(alphabet) for _ in range(16))
        code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
        now = self.now()
        with self.engine.begin() as c:
            c.execute(
                db.claims.insert(),
                [
                    {
                        "code_hash": _hash_code(code),
                        "tenant_id": tenant,
                        "venue_id": venue,
                        "created_at": now,
                        "expires_at": now + ttl_s,
                    }
                ],
            )
        return code

    def enrol(self, req: dict[str, Any], remote: str) -> dict[str, Any]:
        try:
            claim = str(req["claim"])
            sign_pub = crypto.unb64(str(req["box_sign_pub"]))
            kx_pub = crypto.unb64(str(req["box_kx_pub"]))
            box_id = str(req["box_id"])
            venue = str(req["venue"])
            sig = crypto.unb64(str(req["sig"]))
            signed = canonical({k: v for k, v in req.items() if k != "sig"})
            if len(box_id) > 64 or len(venue) > 64 or len(claim) > 64:
                raise ValueError("box_id, venue and claim are at most 64 characters")
        except (KeyError, ValueError, TypeError) as exc:
            raise Refused(400, f"malformed enrolment request: {exc}") from exc
        if not crypto.verify(sign_pub, sig, signed):
            self.security("enrol_bad_signature", box_id, remote, "proof of key possession failed")
            raise Refused(401, "enrolment request not signed by the box key it presents")
        if box_id != "box-" + crypto.fingerprint(sign_pub):
            raise Refused(400, "box id does not match its signing key")
        now = self.now()
        with self.engine.begin() as c:
            row = (
                c.execute(sa.select(db.claims).where(db.claims.c.code_hash == _hash_code(claim)))
                .mappings()
                .first()
            )
            if row is None:
                self.security("enrol_unknown_claim", box_id, remote, "")
                raise Refused(403, "claim code unknown: check it, or create a new one")
            if row["used_at"] is not None:
                if row["used_by"] == box_id:  # the same box retrying after a lost answer
                    return self._enrol_answer(box_id, row["tenant_id"], row["venue_id"])
                self.security("enrol_used_claim", box_id, remote, "")
                raise Refused(409, "claim code already used: create a new one for this box")
            if row["expires_at"] < now:
                raise Refused(410, "claim code expired: create a new one")
            enrolled = c.execute(sa.select(db.boxes.c.id).where(db.boxes.c.id == box_id)).first()
            if enrolled is not None:
                self.security("enrol_enrolled_box", box_id, remote, "new claim for an enrolled key")
                raise Refused(409, "this box key is already enrolled; it needs no new claim")
            if row["venue_id"] != venue:
                raise Refused(
                    403,
                    f"claim code is for venue {row['venue_id']!r}, "
                    f"this box is configured for {venue!r}",
                )
            c.execute(
                db.claims.update()
                .where(db.claims.c.code_hash == row["code_hash"])
                .values(used_at=now, used_by=box_id)
            )
            c.execute(
                db.boxes.insert(),
                [
                    {
                        "id": box_id,
                        "tenant_id": row["tenant_id"],
                        "venue_id": row["venue_id"],
                        "sign_pub": crypto.b64(sign_pub),
                        "kx_pub": crypto.b64(kx_pub),
                        "enrolled_at": now,
                        "agent_version": str(req.get("agent_version", "")),
                        "config_version": 0,
                        "status": "{}",
                    }
                ],
            )
        return self._enrol_answer(box_id, row["tenant_id"], row["venue_id"])

    def _enrol_answer(self, box_id: str, tenant: str, venue: str) -> dict[str, Any]:
        ans = {
            "box_id": box_id,
            "tenant": tenant,
            "venue": venue,
            "cloud_sign_pub": self.keys.sign_pub,
            "cloud_kx_pub": self.keys.kx_pub,
        }
        return {**ans, "sig": crypto.b64(self.keys.sign.sign(canonical(ans)))}

    # ---- boxes and security events -----------------------------------------------------------

    def watermarks(self, box_id: str) -> dict[str, int]:
        """Per stream, the highest seq stored (or accounted for as lost) with no gap below."""
        w = db.watermarks
        with self.engine.connect() as c:
            rows = c.execute(sa.select(w.c.stream, w.c.seq).where(w.c.box_id == box_id))
            return {str(stream): int(seq) for stream, seq in rows}

    def box(self, box_id: str) -> BoxRow | None:
        found = self._boxes.get(box_id)
        if found is None:
            with self.engine.connect() as c:
                r = c.execute(sa.select(db.boxes).where(db.boxes.c.id == box_id)).mappings().first()
            if r is None:
                return None
            found = BoxRow(
                r["id"],
                r["tenant_id"],
                r["venue_id"],
                crypto.unb64(r["sign_pub"]),
                crypto.unb64(r["kx_pub"]),
            )
            self._boxes[box_id] = found
        return found

    def security(self, kind: str, box_id: str | None, remote: str, detail: str) -> None:
        """Record a refused request; repeats of a kind from one source within
        SECURITY_WINDOW_S add to one row's count (and are logged once)."""
        now = self.now()
        key = (kind, remote or "")
        st = db.security_events
        with self.engine.begin() as c:
            open_row = self._security_rows.get(key)
            if open_row is not None and now - open_row[1] < SECURITY_WINDOW_S:
                c.execute(
                    st.update()
                    .where(st.c.id == open_row[0])
                    .values(count=st.c.count + 1, at=now, detail=detail[:500])
                )
                return
            log.warning("security: %s box=%s remote=%s %s", kind, box_id, remote, detail)
            row_id = c.execute(
                st.insert().values(
                    at=now, kind=kind, box_id=box_id, remote=remote, detail=detail[:500], count=1
                )
            ).inserted_primary_key
            assert row_id is not None
            if len(self._security_rows) > 10_000:
                self._security_rows.clear()
            self._security_rows[key] = (int(row_id[0]), now)

    def _key(self, box: BoxRow, kid: int) -> bytes:
        k = self._keys.get((box.id, kid))
        if k is None:
            k = crypto.derive_key(self.keys.kx, box.kx_pub, box.id, kid, crypto.UPLINK)
            self._keys[(box.id, kid)] = k
        return k

    # ---- ingest ---------------------------------------------------------------------------------

    def ingest(self, blob: bytes, remote: str) -> dict[str, Any]:
        """Authenticate, store idempotently, answer signed per-stream watermarks."""
        t0 = time.perf_counter()
        try:
            header, hb, ct = read_header(blob)
        except EnvelopeError as exc:
            self.security("malformed_envelope", None, remote, str(exc))
            raise Refused(400, str(exc)) from exc
        box = self.box(header.box)
        if box is None:
            self.security("unknown_box", header.box, remote, "")
            raise Refused(403, "unknown box: enrol it first")
        if not 1 <= header.kid <= 1_000_000:
            self.security("bad_key_id", box.id, remote, str(header.kid))
            raise Refused(401, "unknown key id")
        try:
            recs = open_records(header, hb, ct, self._key(box, header.kid))
        except EnvelopeError as exc:
            self.security("auth_failed", box.id, remote, str(exc))
            raise Refused(401, "envelope failed authentication") from exc
        if header.venue != box.venue_id:
            self.security(
                "venue_mismatch",
                box.id,
                remote,
                f"claims venue {header.venue!r}, enrolled for {box.venue_id!r}",
            )
            raise Refused(403, "box is not enrolled for that venue")
        try:
            acks = self._store(box, header, recs)
        except sa.exc.IntegrityError as exc:
            if "envelope" not in str(exc).lower():
                raise
            self.security("replay", box.id, remote, f"envelope {header.envelope_id} seen before")
            raise Refused(409, "envelope replayed") from exc
        if self.on_ingest is not None:
            counts: dict[str, int] = {}
            for rec in recs:
                counts[rec[0]] = counts.get(rec[0], 0) + 1
            self.on_ingest(
                IngestObservation(
                    box.tenant_id, box.venue_id, box.id, counts, time.perf_counter() - t0
                )
            )
        # The store generation is part of what is signed: acknowledgements for one
        # generation's records can never delete another's.
        ans = {"box": box.id, "env": header.envelope_id, "acks": acks, "gen": header.generation}
        return {**ans, "sig": crypto.b64(self.keys.sign.sign(canonical(ans)))}

    def _epoch(self, c: sa.Connection, box_id: str, generation: str, now: float) -> int:
        """The epoch of a box's store generation; a new generation gets the next one and is
        recorded as a discontinuity (the box's store was replaced or wiped)."""
        found = self._epochs.get((box_id, generation))
        if found is not None:
            return found
        g = db.store_generations
        row = c.execute(
            sa.select(g.c.epoch).where(g.c.box_id == box_id, g.c.generation == generation)
        ).first()
        if row is not None:
            epoch = int(row[0])
        else:
            top = c.execute(sa.select(sa.func.max(g.c.epoch)).where(g.c.box_id == box_id)).scalar()
            seen = c.execute(
                sa.select(sa.func.max(db.watermarks.c.epoch)).where(
                    db.watermarks.c.box_id == box_id
                )
            ).scalar()
            # "" is the generation of stores older than generations: always the first.
            epoch = 1 if generation == "" else max(int(top or 0), int(seen or 0)) + 1
            c.execute(
                g.insert(),
                [{"box_id": box_id, "generation": generation, "epoch": epoch, "first_seen": now}],
            )
            if epoch > 1:
                log.warning(
                    "box %s syncs from a new store (generation %d): its store was replaced "
                    "or wiped; the earlier generations' records are kept",
                    box_id,
                    epoch,
                )
                c.execute(
                    db.security_events.insert(),
                    [
                        {
                            "at": now,
                            "kind": "store_generation",
                            "box_id": box_id,
                            "remote": "",
                            "detail": f"new store generation {epoch} ({generation})",
                        }
                    ],
                )
        self._epochs[(box_id, generation)] = epoch
        return epoch

    def _store(
        self, box: BoxRow, header: EnvelopeHeader, recs: list[OpenedRecord]
    ) -> dict[str, int]:
        now = self.now()
        rows: list[tuple[Any, ...]] = []
        loss_rows: list[dict[str, Any]] = []
        streams: set[str] = set()
        devs: dict[str, float] = {}
        chain_bodies: list[dict[str, Any]] = []
        box_id, venue = box.id, box.venue_id
        # The hot loop of ingest: one tuple per record, the record's JSON kept as sent.
        for stream, seq, created, text, b in recs:
            typ = b.get("type", "")
            if type(typ) is not str:
                typ = str(typ)
            point, kind = b.get("point"), b.get("kind")
            if point is not None and type(point) is not str:
                point = str(point)
            if kind is not None and type(kind) is not str:
                kind = str(kind)
            dev = None
            if typ == "reading":
                dev = b.get("device")
                if dev is not None:
                    dev = str(dev)
                    devs[dev] = created
            elif typ == "loss":
                try:
                    loss_rows.append(
                        {
                            "box_id": box_id,
                            "epoch": 0,  # set below, once the epoch is known
                            "stream": str(b["stream"]),
                            "first": int(b["first"]),
                            "last": int(b["last"]),
                            "count": int(b["count"]),
                            "reason": str(b.get("reason", ""))[:32],
                            "received_at": now,
                        }
                    )
                    lr = loss_rows[-1]
                    if not 1 <= lr["first"] <= lr["last"] <= MAX_SEQ:
                        loss_rows.pop()
                        raise ValueError("range out of bounds")
                    streams.add(str(b["stream"]))
                except (KeyError, ValueError, TypeError, OverflowError):
                    log.warning("box %s sent a malformed loss record %s/%d", box_id, stream, seq)
            elif stream == haccp.STREAM:
                chain_bodies.append(b)
            rows.append((stream, seq, venue, created, now, typ[:16], dev, point, kind, text))
        streams.update(r[0] for r in rows)
        with self.engine.begin() as c:
            epoch = self._epoch(c, box_id, header.generation, now)
            rows = [(box_id, epoch, *r) for r in rows]
            for lr in loss_rows:
                lr["epoch"] = epoch
            # The envelope id is unique per box: a replayed envelope fails here and the
            # whole transaction (records included) rolls back.
            c.execute(
                db.envelopes.insert(),
                [
                    {
                        "box_id": box_id,
                        "envelope_id": header.envelope_id,
                        "received_at": now,
                        "records": len(recs),
                    }
                ],
            )
            if rows:
                # Straight to the driver: SQLAlchemy's per-row parameter processing cost more
                # than SQLite's insert itself.
                c.exec_driver_sql(self._ins_records_sql, rows)
            if loss_rows:
                c.execute(self._ins_losses, loss_rows)
            if chain_bodies:
                haccp.ingest_chain(c, box_id, venue, chain_bodies, now)
            acks = {s: self._advance(c, box_id, epoch, s) for s in sorted(streams)}
            c.execute(db.boxes.update().where(db.boxes.c.id == box_id).values(last_seen=now))
            for dev, ts in devs.items():
                c.execute(
                    db.upsert(
                        self.engine,
                        db.devices,
                        ["venue_id", "device_id"],
                        {
                            "venue_id": venue,
                            "device_id": dev,
                            "first_seen": ts,
                            "last_seen": ts,
                        },
                    )
                )
        return acks

    def _advance(self, c: sa.Connection, box_id: str, epoch: int, stream: str) -> int:
        """Highest seq such that every seq up to it is stored or accounted for as lost."""
        w = db.watermarks
        row = c.execute(
            sa.select(w.c.seq).where(w.c.box_id == box_id, w.c.epoch == epoch, w.c.stream == stream)
        ).first()
        start = m = int(row[0]) if row else 0
        lt = db.losses
        ranges = [
            (int(f), int(la))
            for f, la in c.execute(
                sa.select(lt.c.first, lt.c.last)
                .where(
                    lt.c.box_id == box_id, lt.c.epoch == epoch, lt.c.stream == stream, lt.c.last > m
                )
                .order_by(lt.c.first)
            )
        ]
        rt = db.records
        while True:
            moved = False
            for f, la in ranges:
                if f <= m + 1 <= la:
                    m, moved = la, True
            nxt = min((f for f, _ in ranges if f > m + 1), default=None)
            # Fast path: every seq after m up to the highest stored (below the next loss
            # range) is there — one index range count instead of walking the rows.
            span = sa.select(sa.func.count(), sa.func.max(rt.c.seq)).where(
                rt.c.box_id == box_id, rt.c.epoch == epoch, rt.c.stream == stream, rt.c.seq > m
            )
            if nxt is not None:
                span = span.where(rt.c.seq < nxt)
            n, top = c.execute(span).one()
            if n and top is not None and int(top) - m == int(n):
                m, moved = int(top), True
                continue
            q = sa.select(rt.c.seq).where(
                rt.c.box_id == box_id, rt.c.epoch == epoch, rt.c.stream == stream, rt.c.seq > m
            )
            if nxt is not None:
                q = q.where(rt.c.seq < nxt)
            for (s,) in c.execute(q.order_by(rt.c.seq).limit(100_000)):
                if s != m + 1:
                    break
                m, moved = int(s), True
            if not moved:
                break
        if m != start:
            c.execute(
                db.upsert(
                    self.engine,
                    w,
                    ["box_id", "epoch", "stream"],
                    {"box_id": box_id, "epoch": epoch, "stream": stream, "seq": m},
                )
            )
        return m

    # ---- box status, documents, queries ------------------------------------------------

    def report_status(self, box_id: str, status: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            c.execute(
                db.boxes.update()
                .where(db.boxes.c.id == box_id)
                .values(
                    last_seen=self.now(),
                    status=json.dumps(status)[:20000],
                    agent_version=str(status.get("agent_version", ""))[:64],
                    config_version=int(status.get("config_version", 0) or 0),
                )
            )

    def fleet(self, online_window_s: float = 300.0) -> list[dict[str, Any]]:
        now = self.now()
        out = []
        g = db.store_generations
        with self.engine.connect() as c:
            gens: dict[str, list[dict[str, Any]]] = {}
            for gr in c.execute(sa.select(g).order_by(g.c.box_id, g.c.epoch)).mappings():
                gens.setdefault(gr["box_id"], []).append(
                    {"epoch": gr["epoch"], "first_seen": gr["first_seen"]}
                )
            for r in c.execute(sa.select(db.boxes).order_by(db.boxes.c.id)).mappings():
                last = r["last_seen"]
                box_gens = gens.get(r["id"], [])
                out.append(
                    {
                        "box": r["id"],
                        "tenant": r["tenant_id"],
                        "venue": r["venue_id"],
                        "online": last is not None and now - last <= online_window_s,
                        "last_seen": last,
                        "agent_version": r["agent_version"],
                        "config_version": r["config_version"],
                        "reported": json.loads(r["status"]),
                        # A store generation after the first is a discontinuity: the box's
                        # store was replaced or wiped (the earlier records are kept).
                        "store_generation": box_gens[-1]["epoch"] if box_gens else 1,
                        "store_replaced_at": [x["first_seen"] for x in box_gens[1:]],
                    }
                )
        return out

    def venue_records(
        self,
        venue: str,
        streams: list[str],
        *,
        device: str | None = None,
        point: str | None = None,
        limit: int = 1000,
        after: float | None = None,
    ) -> list[dict[str, Any]]:
        rt = db.records
        q = sa.select(rt).where(rt.c.venue_id == venue, rt.c.stream.in_(streams))
        if device:
            q = q.where(rt.c.device_id == device)
        if point:
            q = q.where(rt.c.point == point)
        if after is not None:
            q = q.where(rt.c.box_ts > after)
        q = q.order_by(rt.c.box_id, rt.c.epoch, rt.c.stream, rt.c.seq).limit(limit)
        with self.engine.connect() as c:
            return [
                {
                    "box": r["box_id"],
                    "epoch": r["epoch"],
                    "stream": r["stream"],
                    "seq": r["seq"],
                    "box_ts": r["box_ts"],
                    "received_at": r["received_at"],
                    **json.loads(r["body"]),
                }
                for r in c.execute(q).mappings()
            ]

    def losses(self, venue: str) -> list[dict[str, Any]]:
        lt, bt = db.losses, db.boxes
        q = sa.select(lt).join(bt, bt.c.id == lt.c.box_id).where(bt.c.venue_id == venue)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q.order_by(lt.c.stream, lt.c.first)).mappings()]

    def security_log(self, limit: int = 200) -> list[dict[str, Any]]:
        st = db.security_events
        with self.engine.connect() as c:
            return [
                dict(r)
                for r in c.execute(sa.select(st).order_by(st.c.id.desc()).limit(limit)).mappings()
            ]

    def publish(
        self, venue: str, kind: str, body: str, version: int | None = None
    ) -> dict[str, Any]:
        dt = db.documents
        with self.engine.begin() as c:
            cur = c.execute(
                sa.select(sa.func.max(dt.c.version)).where(
                    dt.c.venue_id == venue, dt.c.kind == kind
                )
            ).scalar()
            v = int(cur or 0) + 1 if version is None else version
            doc = {
                "kind": kind,
                "venue": venue,
                "version": v,
                "body": body,
                "published_at": self.now(),
            }
            signed = {**doc, "sig": crypto.b64(self.keys.sign.sign(canonical(doc)))}
            c.execute(
                dt.insert(),
                [
                    {
                        "venue_id": venue,
                        "kind": kind,
                        "version": v,
                        "document": json.dumps(signed),
                        "published_at": doc["published_at"],
                    }
                ],
            )
        return signed

    def latest_documents(
        self, venue: str, have: dict[str, int] | None = None
    ) -> list[dict[str, Any]]:
        """The newest signed document of each kind, only where newer than what the box has."""
        have = have or {}
        dt = db.documents
        with self.engine.connect() as c:
            newest = (
                sa.select(dt.c.kind, sa.func.max(dt.c.version).label("v"))
                .where(dt.c.venue_id == venue)
                .group_by(dt.c.kind)
                .subquery()
            )
            q = (
                sa.select(dt.c.document)
                .join(newest, sa.and_(dt.c.kind == newest.c.kind, dt.c.version == newest.c.v))
                .where(dt.c.venue_id == venue)
            )
            return [
                json.loads(d)
                for (d, kind, v) in c.execute(q.add_columns(dt.c.kind, dt.c.version))
                if v > have.get(kind, 0)
            ]

    def deploy_report(self, box_id: str, rep: dict[str, Any], remote: str = "") -> None:
        status = str(rep.get("status", ""))[:16]
        if status == "refused":
            # The box refused a document it was served: unsigned, wrong key, older or a
            # replay — someone between us and the box, or a tampered documents table.
            self.security(
                "downlink_refused",
                box_id,
                remote,
                f"{rep.get('kind')} v{rep.get('version')}: {rep.get('detail')}",
            )
        with self.engine.begin() as c:
            if status == "applied" and rep.get("kind") == "config":
                c.execute(
                    db.boxes.update()
                    .where(db.boxes.c.id == box_id)
                    .values(config_version=int(rep.get("version", 0)))
                )
            c.execute(
                db.deploy_reports.insert(),
                [
                    {
                        "box_id": box_id,
                        "kind": str(rep.get("kind", ""))[:16],
                        "version": int(rep.get("version", 0)),
                        "status": status,
                        "detail": str(rep.get("detail", ""))[:2000],
                        "at": self.now(),
                    }
                ],
            )

    def deploy_reports(self, box_id: str) -> list[dict[str, Any]]:
        t = db.deploy_reports
        with self.engine.connect() as c:
            return [
                dict(r)
                for r in c.execute(
                    sa.select(t).where(t.c.box_id == box_id).order_by(t.c.id)
                ).mappings()
            ]
