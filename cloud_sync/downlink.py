"""Signed downlink on the box: venue config, rule set and profile set documents.

Each poll asks the cloud for documents newer than the applied versions, and for each one:

1. verify (pure, `verify_document`): signed by the cloud key pinned at enrolment, for this
   venue, of a known kind, and strictly newer than the applied version — so neither an old
   document (rollback attack) nor the current one again (replay) is ever applied;
2. stage it next to the live file, apply it atomically (temp + fsync + os.replace; a symlink
   swap for the profile directory), keeping the previous one;
3. health-check what is now live (`health_check`); on failure roll back to the previous file;
4. persist the applied version (the floor for the next check) and report to the cloud.

Refused documents are logged as security events and the running file stays. The agent does
not reload itself: an applied document records a ``config.applied`` event saying a restart
is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from cloud_sync import crypto
from cloud_sync.errors import DownlinkRejected
from cloud_sync.signing import canonical
from edge_agent.clock import Clock
from edge_agent.errors import EdgeError
from edge_agent.messages import Event, Severity
from edge_agent.store.writer import StoreWriter

log = logging.getLogger(__name__)

# Applied in this order within one poll: a new config may use profiles the same poll brings.
KINDS = ("profiles", "rules", "config")
SIGNED_FIELDS = ("kind", "venue", "version", "body", "published_at")
PROFILE_FILE_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}\.toml")
MAX_BODY = 4 * 1024 * 1024


class Refused(DownlinkRejected):
    """A document refused before anything was staged; `reason` is a short code."""

    def __init__(self, reason: str, message: str, kind: str = "", version: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.kind = kind
        self.version = version


class HealthCheckFailed(DownlinkRejected):
    """The applied document does not load; it has been rolled back."""


@dataclass(frozen=True, slots=True)
class Document:
    kind: str
    venue: str
    version: int
    body: str
    published_at: float
    sha256: str


@dataclass(frozen=True, slots=True)
class Applied:
    version: int = 0
    sha256: str = ""
    failed_version: int = 0
    failed_sha256: str = ""


@dataclass(frozen=True, slots=True)
class DownlinkTargets:
    """The live files the documents replace."""

    config: str  # the venue config file the agent loads
    rules: str  # the venue's rules.toml
    profiles: str  # a directory of profile files (a symlink swapped atomically)
    region: str = "uk"  # food-safety region for validating a rule set

    @classmethod
    def beside(cls, config_source: str, region: str = "uk") -> DownlinkTargets:
        d = os.path.dirname(os.path.abspath(config_source))
        return cls(
            config=os.path.abspath(config_source),
            rules=os.path.join(d, "rules.toml"),
            profiles=os.path.join(d, "downlinked-profiles"),
            region=region,
        )

    def live(self, kind: str) -> str:
        path: str = getattr(self, kind)
        return path


# ---- verification (pure) --------------------------------------------------------------------


def document_sha256(raw: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(raw)).hexdigest()


def verify_document(
    raw: object, cloud_sign_pub: bytes, venue: str, applied: dict[str, Applied]
) -> Document:
    """The document if it may be applied; otherwise `Refused` with the reason."""
    if not isinstance(raw, dict):
        raise Refused("malformed", "document is not a JSON object")
    kind = raw.get("kind")
    version = raw.get("version")
    kind_s = kind if isinstance(kind, str) else ""
    version_i = version if isinstance(version, int) and not isinstance(version, bool) else 0
    sig = raw.get("sig")
    if not isinstance(sig, str) or not sig:
        raise Refused("unsigned", "document is not signed", kind_s, version_i)
    try:
        signed = {k: raw[k] for k in SIGNED_FIELDS}
        sig_bytes = crypto.unb64(sig)
    except (KeyError, ValueError) as exc:
        raise Refused("malformed", f"document lacks {exc}", kind_s, version_i) from exc
    if not crypto.verify(cloud_sign_pub, sig_bytes, canonical(signed)):
        raise Refused(
            "bad_signature", "signature does not match the pinned cloud key", kind_s, version_i
        )
    # Signed by the cloud from here on; still check what it says.
    body, published = signed["body"], signed["published_at"]
    if kind_s not in KINDS or version_i < 1 or not isinstance(body, str):
        raise Refused("malformed", "unknown kind, bad version or body", kind_s, version_i)
    if not isinstance(published, int | float) or len(body) > MAX_BODY:
        raise Refused("malformed", "bad publication time or body too large", kind_s, version_i)
    if signed["venue"] != venue:
        raise Refused(
            "wrong_venue", f"document is for venue {signed['venue']!r}", kind_s, version_i
        )
    current = applied.get(kind_s, Applied()).version
    if version_i < current:
        raise Refused(
            "older", f"version {version_i} is older than the applied {current}", kind_s, version_i
        )
    if version_i == current:
        raise Refused("replayed", f"version {version_i} is already applied", kind_s, version_i)
    return Document(kind_s, venue, version_i, body, float(published), document_sha256(signed))


# ---- staging, atomic apply, rollback ---------------------------------------------------------


def _fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: str, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


class Rollback(Protocol):
    def __call__(self) -> None: ...


def apply_file(live: str, content: bytes) -> Rollback:
    """Stage next to the live file, keep the previous one as ``.previous``, swap atomically."""
    d = os.path.dirname(live)
    os.makedirs(d, exist_ok=True)
    staged = live + ".staged"
    previous = live + ".previous"
    had_live = os.path.exists(live)
    mode = os.stat(live).st_mode & 0o777 if had_live else 0o644
    _write_synced(staged, content, mode)
    if had_live:
        # A hard link keeps the old inode alive under another name at no copying cost.
        link_tmp = previous + ".tmp"
        if os.path.lexists(link_tmp):
            os.unlink(link_tmp)
        os.link(live, link_tmp)
        os.replace(link_tmp, previous)
    os.replace(staged, live)
    _fsync_dir(d)

    def rollback() -> None:
        if had_live:
            os.replace(previous, live)
        elif os.path.exists(live):
            os.unlink(live)
        _fsync_dir(d)

    return rollback


def profile_files(body: str) -> dict[str, bytes]:
    """A profile set's body: ``{"files": {"<id>.toml": "<toml text>", …}}``."""
    try:
        doc = json.loads(body)
        files = doc["files"]
        if not isinstance(files, dict) or not files:
            raise TypeError("files must be a non-empty object")
        out = {str(n): str(t).encode() for n, t in files.items() if isinstance(t, str)}
    except (ValueError, KeyError, TypeError) as exc:
        raise HealthCheckFailed(f"profile set is not a JSON file map: {exc}") from exc
    if len(out) != len(files):
        raise HealthCheckFailed("profile set: every file must be text")
    bad = [n for n in out if not PROFILE_FILE_RE.fullmatch(n)]
    if bad:
        # No path separators, no dot files: nothing may be written outside the set's directory.
        raise HealthCheckFailed(f"profile set: refused file names {bad}")
    return out


def apply_profile_dir(live: str, version: int, files: dict[str, bytes]) -> Rollback:
    """Write ``<live>.v<N>/`` then swap the ``live`` symlink to it in one rename."""
    parent = os.path.dirname(live)
    os.makedirs(parent, exist_ok=True)
    target = f"{live}.v{version}"
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, data in files.items():
        _write_synced(os.path.join(tmp, name), data)
    _fsync_dir(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)
    previous: str | None = None
    if os.path.islink(live):
        previous = os.readlink(live)
    elif os.path.isdir(live):
        # First downlink over an installer-made directory: keep it as the previous set. This
        # one step is two renames, not one; later swaps are atomic.
        previous = os.path.basename(live) + ".v0"
        shutil.rmtree(os.path.join(parent, previous), ignore_errors=True)
        os.rename(live, os.path.join(parent, previous))
    link_tmp = live + ".link.tmp"
    if os.path.lexists(link_tmp):
        os.unlink(link_tmp)
    os.symlink(os.path.basename(target), link_tmp)
    os.replace(link_tmp, live)
    _fsync_dir(parent)

    def rollback() -> None:
        if previous is None:
            os.unlink(live)
        else:
            os.symlink(previous, link_tmp)
            os.replace(link_tmp, live)
        _fsync_dir(parent)
        shutil.rmtree(target, ignore_errors=True)

    return rollback


def prune_profile_dirs(live: str) -> None:
    """Keep the live set and one previous; older version directories go."""
    parent, base = os.path.split(live)
    current = os.readlink(live) if os.path.islink(live) else ""
    pat = re.compile(re.escape(base) + r"\.v(\d+)")
    versions = sorted((int(m.group(1)), n) for n in os.listdir(parent) if (m := pat.fullmatch(n)))
    keep = {current}
    older = [n for _, n in versions if n != current]
    if older:
        keep.add(older[-1])
    for _, n in versions:
        if n not in keep:
            shutil.rmtree(os.path.join(parent, n), ignore_errors=True)


# ---- health checks ------------------------------------------------------------------------------


def health_check(kind: str, targets: DownlinkTargets, venue: str) -> str:
    """Load what is live now with the loader the agent uses; a message, or HealthCheckFailed."""
    from edge_agent.errors import Issue, ValidationError

    try:
        if kind == "config":
            from edge_agent.config.loader import load_config_text

            with open(targets.config, encoding="utf-8") as f:
                cfg = load_config_text(f.read(), targets.config)
            if cfg.venue.id != venue:
                raise HealthCheckFailed(f"config is for venue {cfg.venue.id!r}, not {venue!r}")
            return f"venue config loads: {len(cfg.devices)} devices, their profiles exist"
        if kind == "rules":
            from rules.model import load_rules

            rf = load_rules(targets.rules, targets.region)
            return f"rule set loads: {len(rf.rules)} rules"
        from firmware_profiles.loader import load_profile, profile_files

        issues: list[Issue] = []
        files = profile_files([targets.profiles])
        for file in files:
            try:
                load_profile(file)
            except ValidationError as exc:
                issues.extend(exc.issues)
        if issues:
            raise ValidationError(issues)
        if os.path.exists(targets.config):
            # The config the agent will restart with must still find every profile it uses.
            from edge_agent.config.loader import load_config

            load_config(targets.config)
        return f"profile set loads: {len(files)} profiles"
    except ValidationError as exc:
        raise HealthCheckFailed(str(exc)) from exc
    except (OSError, UnicodeDecodeError, EdgeError) as exc:
        raise HealthCheckFailed(f"{type(exc).__name__}: {exc}") from exc


def apply_document(doc: Document, targets: DownlinkTargets, venue: str) -> str:
    """Stage, apply, health-check; rolled back (and HealthCheckFailed raised) on failure."""
    live = targets.live(doc.kind)
    if doc.kind == "profiles":
        rollback = apply_profile_dir(live, doc.version, profile_files(doc.body))
    else:
        rollback = apply_file(live, doc.body.encode())
    try:
        detail = health_check(doc.kind, targets, venue)
    except HealthCheckFailed:
        rollback()
        raise
    if doc.kind == "profiles":
        prune_profile_dirs(live)
    return detail


# ---- persisted state ----------------------------------------------------------------------------


def load_state(conn: sqlite3.Connection) -> dict[str, Applied]:
    return {
        k: Applied(int(v), str(s), int(fv), str(fs))
        for k, v, s, fv, fs in conn.execute(
            "SELECT kind, applied_version, applied_sha256, failed_version, failed_sha256 "
            "FROM downlink_state"
        )
    }


def _save_applied(conn: sqlite3.Connection, doc: Document, at: float) -> None:
    conn.execute(
        "INSERT INTO downlink_state (kind, applied_version, applied_sha256, applied_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(kind) DO UPDATE SET "
        "applied_version=excluded.applied_version, applied_sha256=excluded.applied_sha256, "
        "applied_at=excluded.applied_at",
        (doc.kind, doc.version, doc.sha256, at),
    )


def _save_failed(conn: sqlite3.Connection, doc: Document) -> None:
    conn.execute(
        "INSERT INTO downlink_state (kind, failed_version, failed_sha256) VALUES (?, ?, ?) "
        "ON CONFLICT(kind) DO UPDATE SET failed_version=excluded.failed_version, "
        "failed_sha256=excluded.failed_sha256",
        (doc.kind, doc.version, doc.sha256),
    )


def _delete_report(conn: sqlite3.Connection, rid: int) -> None:
    conn.execute("DELETE FROM downlink_reports WHERE id=?", (rid,))


def _queue_report(
    conn: sqlite3.Connection, kind: str, version: int, status: str, detail: str, at: float
) -> None:
    conn.execute(
        "INSERT INTO downlink_reports (kind, version, status, detail, at) VALUES (?, ?, ?, ?, ?)",
        (kind, version, status, detail[:2000], at),
    )


# ---- the poller ---------------------------------------------------------------------------------

SignedRequest = Callable[[str, str, "dict[str, Any] | None"], Awaitable[Any]]


class Downlink:
    """Fetches and applies documents; driven by the sync client's cycle (`poll`)."""

    def __init__(
        self,
        targets: DownlinkTargets,
        writer: StoreWriter,
        clock: Clock,
        publish: Callable[[Event], Awaitable[None]] | None = None,
    ) -> None:
        self.targets = targets
        self.writer = writer
        self.clock = clock
        self.publish = publish
        self.applied: dict[str, Applied] | None = None
        self._refused_seen: set[str] = set()
        self.refusals: list[tuple[str, str, int]] = []  # (reason, kind, version), for status

    def versions(self) -> dict[str, int]:
        return {k: a.version for k, a in (self.applied or {}).items()}

    async def poll(
        self, box_id: str, venue: str, cloud_sign_pub: bytes, request: SignedRequest
    ) -> None:
        if self.applied is None:
            self.applied = await self.writer.transact(load_state)
        await self._send_reports(box_id, request)
        have = "&".join(f"{k}={self.applied.get(k, Applied()).version}" for k in sorted(KINDS))
        docs = await request("GET", f"/v1/boxes/{box_id}/documents?{have}", None)
        if not isinstance(docs, list):
            raise DownlinkRejected("documents answer is not a list")
        order = {k: i for i, k in enumerate(KINDS)}
        docs.sort(key=lambda d: order.get(str(d.get("kind")), 99) if isinstance(d, dict) else 99)
        for raw in docs:
            await self._one(raw, venue, cloud_sign_pub)
        await self._send_reports(box_id, request)

    async def _one(self, raw: object, venue: str, cloud_sign_pub: bytes) -> None:
        assert self.applied is not None
        try:
            doc = verify_document(raw, cloud_sign_pub, venue, self.applied)
        except Refused as exc:
            await self._refused(raw, exc)
            return
        prev = self.applied.get(doc.kind, Applied())
        if doc.version == prev.failed_version and doc.sha256 == prev.failed_sha256:
            return  # tried, rolled back and reported already; wait for a newer one
        now = self.clock.time()
        try:
            detail = await asyncio.to_thread(apply_document, doc, self.targets, venue)
        except (HealthCheckFailed, OSError) as exc:
            why = str(exc)
            log.error(
                "downlink: %s version %d failed its health check, rolled back: %s",
                doc.kind,
                doc.version,
                why,
            )

            def failed(conn: sqlite3.Connection) -> None:
                _save_failed(conn, doc)
                _queue_report(conn, doc.kind, doc.version, "rolled_back", why, now)

            await self.writer.transact(failed)
            self.applied[doc.kind] = Applied(prev.version, prev.sha256, doc.version, doc.sha256)
            await self._event(
                "downlink.rolled_back",
                Severity.WARNING,
                f"{doc.kind} version {doc.version} rolled back: {why[:200]}",
                kind=doc.kind,
                version=doc.version,
                running_version=prev.version,
                reason=why,
            )
            return

        def ok(conn: sqlite3.Connection) -> None:
            _save_applied(conn, doc, now)
            _queue_report(conn, doc.kind, doc.version, "applied", detail, now)

        await self.writer.transact(ok)
        self.applied[doc.kind] = Applied(doc.version, doc.sha256, prev.failed_version, "")
        log.info(
            "downlink: %s version %d applied (%s); restart the agent", doc.kind, doc.version, detail
        )
        await self._event(
            "config.applied",
            Severity.INFO,
            f"{doc.kind} version {doc.version} applied; an agent restart is needed to use it",
            kind=doc.kind,
            version=doc.version,
            previous_version=prev.version,
            file=self.targets.live(doc.kind),
            restart_required=True,
        )

    async def _refused(self, raw: object, exc: Refused) -> None:
        key = json.dumps(raw, sort_keys=True, default=str) if isinstance(raw, dict) else repr(raw)
        digest = hashlib.sha256(key.encode()).hexdigest()
        if digest in self._refused_seen:
            return  # the same bad document again: logged and reported once
        self._refused_seen.add(digest)
        self.refusals.append((exc.reason, exc.kind, exc.version))
        log.warning(
            "security: downlink %s version %d refused (%s): %s; the running one stays",
            exc.kind or "?",
            exc.version,
            exc.reason,
            exc,
        )
        now = self.clock.time()
        await self.writer.transact(
            lambda conn: _queue_report(
                conn, exc.kind, exc.version, "refused", f"{exc.reason}: {exc}", now
            )
        )
        await self._event(
            "security.downlink_refused",
            Severity.WARNING,
            f"downlinked {exc.kind or 'document'} refused: {exc.reason}",
            kind=exc.kind,
            version=exc.version,
            reason=exc.reason,
            detail=str(exc),
        )

    async def _send_reports(self, box_id: str, request: SignedRequest) -> None:
        pending = await self.writer.transact(
            lambda conn: conn.execute(
                "SELECT id, kind, version, status, detail FROM downlink_reports ORDER BY id"
            ).fetchall()
        )
        for rid, kind, version, status, detail in pending:
            body = {"kind": kind, "version": version, "status": status, "detail": detail}
            await request("POST", f"/v1/boxes/{box_id}/reports", body)
            await self.writer.transact(partial(_delete_report, rid=int(rid)))

    async def _event(self, event_kind: str, severity: Severity, message: str, **data: Any) -> None:
        if self.publish is not None:
            await self.publish(
                Event(event_kind, self.clock.time(), "downlink", severity, message, data)
            )
