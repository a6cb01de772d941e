"""`beerflow-edge backup` / `restore`: the store, the box's identity and keys, the venue files,
in one passphrase-encrypted file.

The store is copied with SQLite's online backup (consistent while the agent writes). Restore
unpacks into a staging directory beside the target, checks everything (the passphrase, the
store's integrity and schema, the HACCP chain) and only then moves files into place; it never
overwrites an existing store or identity. A restored box that is enrolled must then line its
outbox up with what the cloud already holds (`cloud_sync.realign`), or records written since
the backup would reuse sequence numbers the cloud has seen.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from beerflow_edge.backup_crypto import DEFAULT_LOG2_N, DecryptingReader, EncryptingWriter
from edge_agent import __version__
from edge_agent.errors import EdgeError

FORMAT = 1
STORE_MEMBER = "store/beerflow.db"


class BackupError(EdgeError):
    pass


@dataclass(frozen=True)
class Manifest:
    format: int
    created: float
    agent_version: str
    venue: str
    config_name: str
    store_name: str
    schema_version: int
    haccp_records: int
    outbox: dict[str, dict[str, int]]
    files: list[str]


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    config_path: str
    store_path: str
    identity_restored: bool
    haccp_records: int


def _store_facts(conn: sqlite3.Connection) -> tuple[int, int, dict[str, dict[str, int]]]:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    haccp = 0
    if "haccp_records" in tables:
        haccp = int(conn.execute("SELECT count(*) FROM haccp_records").fetchone()[0])
    outbox: dict[str, dict[str, int]] = {}
    if "outbox_streams" in tables:
        for stream, nxt, acked in conn.execute(
            "SELECT stream, next_seq, acked_seq FROM outbox_streams"
        ):
            outbox[stream] = {"next_seq": int(nxt), "acked_seq": int(acked)}
    return version, haccp, outbox


def _venue_files(config_path: Path) -> list[Path]:
    """The venue config and the other TOML files beside it (rules, staff…)."""
    found = {config_path}
    found.update(p for p in config_path.parent.glob("*.toml") if p.is_file())
    return sorted(found)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = path.stat().st_size, 0o600, int(path.stat().st_mtime)
    with path.open("rb") as fh:
        tar.addfile(info, fh)


def create_backup(
    config_path: str, out: BinaryIO, passphrase: str, *, log2_n: int = DEFAULT_LOG2_N
) -> Manifest:
    from cloud_sync.paths import identity_dir
    from edge_agent.config.loader import load_config

    cfg = load_config(config_path)
    store = Path(cfg.storage.path)
    if not store.exists():
        raise BackupError(f"no store at {store}: nothing to back up")
    sync_dir = Path(identity_dir(str(store)))
    with tempfile.TemporaryDirectory(prefix="beerflow-backup-") as tmp:
        os.chmod(tmp, 0o700)
        snap = Path(tmp) / "store.db"
        src = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        dst = sqlite3.connect(snap)
        try:
            src.backup(dst)  # one step: a consistent snapshot under one read transaction
            schema, haccp, outbox = _store_facts(dst)
        finally:
            dst.close()
            src.close()
        venue = _venue_files(Path(cfg.source))
        idfiles = sorted(p for p in sync_dir.iterdir() if p.is_file()) if sync_dir.is_dir() else []
        members = [f"venue/{p.name}" for p in venue] + [f"sync/{p.name}" for p in idfiles]
        manifest = Manifest(
            FORMAT,
            time.time(),
            __version__,
            cfg.venue.id,
            Path(cfg.source).name,
            store.name,
            schema,
            haccp,
            outbox,
            [*members, STORE_MEMBER],
        )
        enc = EncryptingWriter(out, passphrase, log2_n)
        with tarfile.open(fileobj=enc, mode="w|") as tar:  # type: ignore[call-overload]
            _add_bytes(tar, "manifest.json", json.dumps(manifest.__dict__, indent=2).encode())
            for p in venue:
                _add_file(tar, f"venue/{p.name}", p)
            for p in idfiles:
                _add_file(tar, f"sync/{p.name}", p)
            _add_file(tar, STORE_MEMBER, snap)
        enc.close()
    return manifest


def _safe_name(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] not in ("venue", "sync", "store") or parts[1] in ("", ".", ".."):
        raise BackupError(f"backup holds an unexpected member {name!r}")
    return name


def read_backup(src: BinaryIO, passphrase: str, into: Path) -> Manifest:
    """Decrypt and unpack into `into` (a private staging directory); nothing else is touched."""
    manifest: Manifest | None = None
    reader = DecryptingReader(src, passphrase)
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            if not member.isfile():
                raise BackupError(f"backup holds a non-file member {member.name!r}")
            fh = tar.extractfile(member)
            assert fh is not None
            if member.name == "manifest.json":
                doc: dict[str, Any] = json.loads(fh.read())
                if doc.get("format") != FORMAT:
                    raise BackupError(f"backup format {doc.get('format')} is not supported")
                manifest = Manifest(**doc)
                continue
            if manifest is None:
                raise BackupError("backup has no manifest first")
            dest = into / _safe_name(member.name)
            dest.parent.mkdir(mode=0o700, exist_ok=True)
            with dest.open("wb") as out:
                shutil.copyfileobj(fh, out)
            os.chmod(dest, 0o600)
    if manifest is None:
        raise BackupError("backup is empty")
    missing = [m for m in manifest.files if not (into / m).exists()]
    if missing:
        raise BackupError(f"backup lacks {', '.join(missing)}")
    return manifest


def _check_store(path: Path) -> int:
    from edge_agent.store.schema import SCHEMA_VERSION
    from rules.haccp import chain

    conn = sqlite3.connect(path)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the store in the backup is damaged: {ok}")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise BackupError(
                f"the backup's store has schema {version}, newer than this agent's "
                f"{SCHEMA_VERSION}: restore with the release that made it"
            )
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "haccp_records" not in tables:
            return 0
        v = chain.verify(conn)
        if not v.ok:
            raise BackupError(
                f"the HACCP chain in the backup is broken at record {v.broken_seq}: {v.reason}"
            )
        return v.records
    finally:
        conn.close()


def restore_backup(
    src: BinaryIO,
    passphrase: str,
    config_dir: str,
    before_commit: Callable[[Path, Path], None] | None = None,
) -> Restored:
    """Restore into `config_dir`; the store and identity go where the restored config says.

    `before_commit(staged_store, staged_sync_dir)` runs after every check and before anything
    is moved into place (the CLI lines the outbox up with the cloud there); if it raises,
    nothing is restored.
    """
    from cloud_sync.paths import identity_dir
    from edge_agent.config.loader import load_config

    target = Path(config_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".beerflow-restore-", dir=target))
    try:
        manifest = read_backup(src, passphrase, stage)
        config_path = target / manifest.config_name
        # Resolve the restored config as if it were in place, to learn where its store goes.
        staged_cfg = stage / "venue" / manifest.config_name
        cfg = load_config(str(staged_cfg))
        store = Path(cfg.storage.path)
        if not os.path.isabs(_raw_store_path(staged_cfg)):
            store = target / _raw_store_path(staged_cfg)
        sync_dir = Path(identity_dir(str(store)))
        clashes = [
            p
            for p in (
                store,
                sync_dir / "identity.json",
                *(target / f.name for f in (stage / "venue").iterdir()),
            )
            if p.exists()
        ]
        if clashes:
            raise BackupError(
                "refusing to overwrite "
                + ", ".join(str(p) for p in clashes)
                + ": restore into a fresh directory (or move these away first)"
            )
        haccp = _check_store(stage / STORE_MEMBER)
        if before_commit is not None:
            before_commit(stage / STORE_MEMBER, stage / "sync")
        store.parent.mkdir(parents=True, exist_ok=True)
        owner = store.parent.stat()
        for f in sorted((stage / "venue").iterdir()):
            os.replace(f, target / f.name)
        restored_identity = False
        if (stage / "sync").is_dir():
            sync_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for f in sorted((stage / "sync").iterdir()):
                os.replace(f, sync_dir / f.name)
                _chown_like(sync_dir / f.name, owner)
            _chown_like(sync_dir, owner)
            restored_identity = True
        os.replace(stage / STORE_MEMBER, store)
        _chown_like(store, owner)
        return Restored(manifest, str(config_path), str(store), restored_identity, haccp)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _raw_store_path(config: Path) -> str:
    import tomllib

    with config.open("rb") as fh:
        doc = tomllib.load(fh)
    return str(doc.get("storage", {}).get("path", "beerflow.db"))


def _chown_like(path: Path, like: os.stat_result) -> None:
    """Restored as root for the agent's user: its files take the data directory's owner."""
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            os.chown(path, like.st_uid, like.st_gid)
