"""The sync client: drains the outbox to the cloud in byte-sized envelopes and deletes only
what the cloud acknowledged. All its state is in the store, so a crash resumes where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from cloud_sync import crypto
from cloud_sync.downlink import Downlink
from cloud_sync.enrol import enrol
from cloud_sync.envelope import EnvelopeHeader, seal_records
from cloud_sync.errors import EnrolmentError, SyncError
from cloud_sync.identity import BoxIdentity, save
from cloud_sync.outbox import Outbox
from cloud_sync.signing import canonical, request_message
from edge_agent.backoff import Backoff
from edge_agent.clock import Clock, SystemClock
from edge_agent.messages import Event, Severity
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncSettings:
    max_envelope_bytes: int = 512 * 1024
    idle_s: float = 5.0
    bandwidth_bps: float | None = None  # optional cap on the uplink, bytes per second
    request_timeout_s: float = 30.0
    status_every_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    downlink_every_s: float = 60.0  # how often to ask for new signed documents


@dataclass
class SyncState:
    online: bool | None = None
    last_success: float | None = None
    last_error: str = ""
    envelopes: int = 0
    records_sent: int = 0
    records_acked: int = 0


MAX_ROWS = 50_000  # records per envelope, whatever their size


@dataclass(frozen=True, slots=True)
class _Envelope:
    header: EnvelopeHeader
    blob: bytes
    records: int
    first: tuple[int, int]  # outbox keys (priority, id) of its first and last rows
    last: tuple[int, int]
    full: bool  # hit a size limit: more is likely waiting behind it


class CloudRefused(SyncError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"cloud refused ({status}): {message}")
        self.status = status


class SyncClient:
    def __init__(
        self,
        identity: BoxIdentity,
        outbox: Outbox,
        writer: StoreWriter,
        *,
        identity_file: str | None = None,
        settings: SyncSettings | None = None,
        clock: Clock | None = None,
        publish: Callable[[Event], Awaitable[None]] | None = None,
        agent_version: str = "",
        status_extra: Callable[[], dict[str, Any]] | None = None,
        after_sync: Callable[[aiohttp.ClientSession], Awaitable[None]] | None = None,
        downlink: Downlink | None = None,
    ) -> None:
        self.identity = identity
        self.outbox = outbox
        self.writer = writer
        self.identity_file = identity_file
        self.settings = settings or SyncSettings()
        self.clock = clock or SystemClock()
        self.publish = publish
        self.agent_version = agent_version
        self.status_extra = status_extra
        self.after_sync = after_sync
        self.downlink = downlink
        self._next_downlink = float("-inf")
        self._downlink_failing = False
        self.state = SyncState()
        self.backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        self._wake = asyncio.Event()
        self._ro: sqlite3.Connection | None = None
        self._last_status = float("-inf")
        self._prefetch: asyncio.Future[_Envelope | None] | None = None
        self._generation: str | None = None  # the store's, read once

    def wake(self) -> None:
        """Thread-safe nudge: new records are in the outbox."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    _loop: asyncio.AbstractEventLoop | None = None

    # ---- the task ----------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.outbox.on_append = self.wake
        self._ro = connect(self.writer.path, readonly=True)
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    await self.step(session)
        finally:
            await self._drop_prefetch()
            if self._ro is not None:
                self._ro.close()
            self._ro = None

    async def step(self, session: aiohttp.ClientSession) -> None:
        """One round: enrol if needed, send one envelope (or idle), handle the answer."""
        try:
            if not self.identity.enrolled:
                await self._enrol(session)
                return
            if self.downlink is not None and self.clock.time() >= self._next_downlink:
                await self._poll_downlink(session)
            # Cleared before the outbox is read, not when going idle: a record committed
            # while the status report is in flight must still wake the idle wait.
            self._wake.clear()
            env = await self._next_envelope()
            if env is None:
                await self._report_status(session)
                if self.after_sync is not None:
                    await self.after_sync(session)
                await self._idle()
                return
            if env.full:
                # Prepare the next envelope (read, open, seal) while the cloud stores this
                # one: box work and cloud work overlap instead of taking turns.
                self._prefetch = asyncio.ensure_future(asyncio.to_thread(self._prepare, env))
            acks = await self._send(session, env)
        except CloudRefused as exc:
            await self._drop_prefetch()
            if exc.status == 409:
                # The cloud stored this envelope already (a duplicated request, an answer lost
                # on the way): the cloud is there. The records go again in a new envelope,
                # which it acknowledges without storing them twice.
                log.info("sync: envelope already stored by the cloud; sending its records again")
                await self._came_online()
                return
            await self._went_offline(exc)
            await self.clock.sleep(self.backoff.next())
            return
        except (aiohttp.ClientError, TimeoutError, SyncError, OSError) as exc:
            await self._drop_prefetch()
            await self._went_offline(exc)
            await self.clock.sleep(self.backoff.next())
            return
        self.state.records_acked += await self.writer.transact(
            lambda conn: Outbox.acknowledge(conn, acks)
        )
        await self._came_online()
        if self.settings.bandwidth_bps:
            await self.clock.sleep(len(env.blob) / self.settings.bandwidth_bps)

    async def _next_envelope(self) -> _Envelope | None:
        if self._prefetch is not None:
            task, self._prefetch = self._prefetch, None
            env = await task
            if env is not None:
                return env
        return await asyncio.to_thread(self._prepare, None)

    async def _drop_prefetch(self) -> None:
        if self._prefetch is not None:
            task, self._prefetch = self._prefetch, None
            with contextlib.suppress(Exception):
                await task

    def _prepare(self, behind: _Envelope | None) -> _Envelope | None:
        """Read, open and seal the next envelope (worker thread). With `behind`, the one after
        that envelope still in flight — unless something that goes before it arrived since
        (an alarm behind a telemetry backlog): then None, and the next round starts afresh
        from the head once the in-flight one is acknowledged."""
        conn = self._reader()
        max_bytes = self.settings.max_envelope_bytes
        if behind is None:
            rows = Outbox.read_batch(conn, max_bytes, MAX_ROWS)
        else:
            if Outbox.head(conn) != behind.first:
                return None
            rows = Outbox.read_batch(conn, max_bytes, MAX_ROWS, after=behind.last)
        if not rows:
            return None
        ident = self.identity
        bodies = self.outbox.open_rows(rows)
        if self._generation is None:
            self._generation = Outbox.generation(conn)
        header, blob = seal_records(
            ident.box_id,
            ident.venue,
            ident.kid,
            ident.key(ident.kid, crypto.UPLINK),
            [(r.stream, r.seq, r.created) for r in rows],
            bodies,
            self.clock.time(),
            self._generation,
        )
        full = len(rows) >= MAX_ROWS or sum(len(r.payload) for r in rows) >= max_bytes
        return _Envelope(header, blob, len(rows), rows[0].key, rows[-1].key, full)

    def _reader(self) -> sqlite3.Connection:
        if self._ro is None:
            self._ro = connect(self.writer.path, readonly=True)
        return self._ro

    async def _idle(self) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(self.settings.idle_s))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, waker):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _enrol(self, session: aiohttp.ClientSession) -> None:
        claim = self.identity.pending_claim
        if not claim:
            raise SyncError("box not enrolled and no claim code: run `beerflow-edge provision`")
        try:
            ident = await enrol(session, self.identity, claim, self.agent_version)
        except EnrolmentError as exc:
            raise SyncError(str(exc)) from exc
        if self.identity_file:
            await asyncio.to_thread(save, self.identity_file, ident)
        self.identity = ident
        self.outbox.identity = ident
        log.info("sync: box %s enrolled for venue %s", ident.box_id, ident.venue)

    async def _send(self, session: aiohttp.ClientSession, env: _Envelope) -> dict[str, int]:
        ident = self.identity
        header, blob = env.header, env.blob
        async with session.post(
            f"{ident.cloud_url}/v1/ingest",
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
        ) as r:
            raw = await r.read()
            status = r.status
        if status != 200:
            raise CloudRefused(status, raw[:200].decode("utf-8", "replace"))
        try:
            doc = json.loads(raw)
            answer = {"box": doc["box"], "env": doc["env"], "acks": doc["acks"]}
            if "gen" in doc:
                answer["gen"] = doc["gen"]
            sig = crypto.unb64(str(doc["sig"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SyncError(f"malformed acknowledgement: {exc}") from exc
        # Acks delete data: only a signature by the pinned cloud key over this very envelope
        # id may do that.
        if not crypto.verify(crypto.unb64(ident.cloud_sign_pub), sig, canonical(answer)) or (
            answer["env"] != header.envelope_id or answer["box"] != ident.box_id
        ):
            raise SyncError("acknowledgement not signed by the pinned cloud key; ignored")
        if answer.get("gen", "") != header.generation:
            # A cloud that does not know store generations would acknowledge this store's
            # records against an earlier store's watermarks: nothing may be deleted.
            raise SyncError(
                "acknowledgement is not for this store generation (the cloud may predate "
                "store generations); nothing deleted"
            )
        acks = {str(s): int(q) for s, q in dict(answer["acks"]).items() if isinstance(q, int)}
        self.state.envelopes += 1
        self.state.records_sent += env.records
        return acks

    async def _poll_downlink(self, session: aiohttp.ClientSession) -> None:
        """Fetch and apply new signed documents; a failure here never holds up the uplink."""
        assert self.downlink is not None
        self._next_downlink = self.clock.time() + self.settings.downlink_every_s

        async def request(method: str, path: str, body: dict[str, Any] | None) -> Any:
            return await self.signed_request(session, method, path, body)

        ident = self.identity
        try:
            await self.downlink.poll(
                ident.box_id, ident.venue, crypto.unb64(ident.cloud_sign_pub), request
            )
        except (aiohttp.ClientError, TimeoutError, SyncError, OSError, ValueError) as exc:
            if not self._downlink_failing:
                log.warning("sync: fetching signed documents failed, will retry: %s", exc)
                self._downlink_failing = True
            return
        if self._downlink_failing:
            log.info("sync: fetching signed documents works again")
            self._downlink_failing = False

    async def _report_status(self, session: aiohttp.ClientSession) -> None:
        now = self.clock.time()
        if now - self._last_status < self.settings.status_every_s:
            return
        self._last_status = now
        backlog = await asyncio.to_thread(Outbox.backlog, self._reader())
        status: dict[str, Any] = {
            "agent_version": self.agent_version,
            "box_time": now,
            "backlog": {b.stream: b.rows for b in backlog},
            "evicted": {b.stream: b.evicted for b in backlog if b.evicted},
        }
        if self.downlink is not None:
            versions = self.downlink.versions()
            status["documents"] = versions
            status["config_version"] = versions.get("config", 0)
        if self.status_extra is not None:
            status.update(self.status_extra())
        await self.signed_request(
            session, "POST", f"/v1/boxes/{self.identity.box_id}/status", status
        )

    async def signed_request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
    ) -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        ts = repr(self.clock.time())
        sig = crypto.b64(self.identity.sign(request_message(method, path, ts, raw)))
        headers = {"X-Box-Time": ts, "X-Box-Signature": sig, "Content-Type": "application/json"}
        async with session.request(
            method, f"{self.identity.cloud_url}{path}", data=raw, headers=headers
        ) as r:
            doc = await r.json(content_type=None)
            if r.status != 200:
                raise CloudRefused(r.status, str(doc))
            return doc

    async def _went_offline(self, exc: BaseException) -> None:
        self.state.last_error = str(exc) or type(exc).__name__
        if self.state.online is not False:
            log.warning("sync: cloud unreachable, working offline: %s", self.state.last_error)
            self.state.online = False
            await self._event(
                "sync.offline", Severity.WARNING, "cloud unreachable", error=self.state.last_error
            )

    async def _came_online(self) -> None:
        self.backoff.reset()
        self.state.last_success = self.clock.time()
        if self.state.online is not True:
            if self.state.online is False:
                log.info("sync: cloud reachable again")
            self.state.online = True
            await self._event("sync.online", Severity.INFO, "cloud reachable")

    async def _event(self, kind: str, severity: Severity, message: str, **data: Any) -> None:
        if self.publish is not None:
            await self.publish(Event(kind, self.clock.time(), "sync", severity, message, data))

    def rotate_key(self) -> BoxIdentity:
        """New records use the next key id; old ones keep theirs (derivable, still open)."""
        self.identity = replace(self.identity, kid=self.identity.kid + 1)
        self.outbox.identity = self.identity
        if self.identity_file:
            save(self.identity_file, self.identity)
        return self.identity
