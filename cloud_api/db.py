"""Cloud storage through SQLAlchemy Core: SQLite embedded by default, PostgreSQL in production."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
)
venues = sa.Table(
    "venues",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
)
boxes = sa.Table(
    "boxes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("venue_id", sa.String(64), sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("sign_pub", sa.String(64), nullable=False),
    sa.Column("kx_pub", sa.String(64), nullable=False),
    sa.Column("enrolled_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float),
    sa.Column("agent_version", sa.String(64), nullable=False, default=""),
    sa.Column("config_version", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.Text, nullable=False, default="{}"),
)
devices = sa.Table(
    "devices",
    metadata,
    sa.Column("venue_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
)
claims = sa.Table(
    "claims",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Column("used_by", sa.String(64)),
)
records = sa.Table(
    "records",
    metadata,
    sa.Column("box_id", sa.String(64), primary_key=True),
    # The store generation on the box (1 = the first store the cloud saw): a box whose store
    # was replaced numbers from 1 again at a new address, never colliding with the old one.
    sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False, default=1),
    sa.Column("stream", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("box_ts", sa.Float, nullable=False),  # the box's clock
    sa.Column("received_at", sa.Float, nullable=False),  # the cloud's clock
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("device_id", sa.String(128)),
    sa.Column("point", sa.String(128)),
    sa.Column("kind", sa.String(128)),
    sa.Column("body", sa.Text, nullable=False),
)
sa.Index("records_venue_stream", records.c.venue_id, records.c.stream, records.c.box_ts)
watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("box_id", sa.String(64), primary_key=True),
    # The store generation on the box (1 = the first store the cloud saw): a box whose store
    # was replaced numbers from 1 again at a new address, never colliding with the old one.
    sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False, default=1),
    sa.Column("stream", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)
losses = sa.Table(
    "losses",
    metadata,
    sa.Column("box_id", sa.String(64), primary_key=True),
    # The store generation on the box (1 = the first store the cloud saw): a box whose store
    # was replaced numbers from 1 again at a new address, never colliding with the old one.
    sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False, default=1),
    sa.Column("stream", sa.String(32), primary_key=True),
    sa.Column("first", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("last", sa.BigInteger, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)
# Each store generation a box has synced from: the random id its store drew when it was
# created ("" for stores older than generations), in the order the cloud first saw them.
store_generations = sa.Table(
    "store_generations",
    metadata,
    sa.Column("box_id", sa.String(64), primary_key=True),
    sa.Column("generation", sa.String(32), primary_key=True),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.UniqueConstraint("box_id", "epoch", name="store_generations_epoch"),
)
envelopes = sa.Table(
    "envelopes",
    metadata,
    sa.Column("box_id", sa.String(64), primary_key=True),
    sa.Column("envelope_id", sa.String(32), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
)
security_events = sa.Table(
    "security_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("box_id", sa.String(64)),
    sa.Column("remote", sa.String(64)),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    # The same kind from the same source within a window is one row, counted: a guesser
    # cannot grow the table by a row per guess.
    sa.Column("count", sa.Integer, nullable=False, default=1),
)
documents = sa.Table(
    "documents",
    metadata,
    sa.Column("venue_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.Text, nullable=False),  # the signed JSON, verbatim
    sa.Column("published_at", sa.Float, nullable=False),
)
deploy_reports = sa.Table(
    "deploy_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("box_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("at", sa.Float, nullable=False),
)
# Each venue's HACCP chain as its boxes sent it, verified on arrival; and their signed anchors.
haccp_records = sa.Table(
    "haccp_records",
    metadata,
    sa.Column("box_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("unit", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # the stored JSON text, verbatim
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("problem", sa.Text, nullable=False, default=""),  # "" when it verified
)
sa.Index("haccp_records_venue_ts", haccp_records.c.venue_id, haccp_records.c.ts)
haccp_anchors = sa.Table(
    "haccp_anchors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("box_id", sa.String(64), nullable=False),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("head", sa.String(64), nullable=False),
    sa.Column("box_at", sa.Float, nullable=False),
    sa.Column("sig", sa.String(128), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("problem", sa.Text, nullable=False, default=""),  # "" when it was accepted
)
sa.Index("haccp_anchors_box", haccp_anchors.c.box_id, haccp_anchors.c.id)
# The cloud's own notification path: who to tell per venue, and durable notification rows
# (one per venue, key, recipient) for alarms the box has not got through and for silent boxes.
venue_notify = sa.Table(
    "venue_notify",
    metadata,
    sa.Column("venue_id", sa.String(64), primary_key=True),
    sa.Column("recipients", sa.Text, nullable=False),  # JSON [{"id", "urls"}]; secrets inside
    sa.Column("silent_after_s", sa.Float, nullable=False),
    sa.Column("second_path_after_s", sa.Float, nullable=False),
)
cloud_notifications = sa.Table(
    "cloud_notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("recipient", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint("venue_id", "key", "recipient"),
)


def _create_private(url: str) -> None:
    """An embedded database file is created 0600 (SQLite gives its -wal and -shm the same
    mode), not made private after the fact."""
    path = sa.engine.make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        _create_private(url)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    _add_epochs(engine)
    _add_column(engine, security_events, "count", "INTEGER NOT NULL DEFAULT 1")
    return engine


def _add_column(engine: sa.Engine, table: sa.Table, name: str, ddl: str) -> None:
    """A column added since the database was made (both dialects take this form)."""
    if name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
        with engine.begin() as c:
            c.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {ddl}")


def _add_epochs(engine: sa.Engine) -> None:
    """A database made before store generations: its records, watermarks and losses all
    belong to each box's first generation (epoch 1), and the epoch joins their keys."""
    if "epoch" in {c["name"] for c in sa.inspect(engine).get_columns("records")}:
        return
    with engine.begin() as c:
        for table in (records, watermarks, losses):
            keys = ", ".join(col.name for col in table.primary_key.columns)
            if engine.dialect.name == "postgresql":
                c.exec_driver_sql(
                    f"ALTER TABLE {table.name} ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1"
                )
                c.exec_driver_sql(f"ALTER TABLE {table.name} DROP CONSTRAINT {table.name}_pkey")
                c.exec_driver_sql(f"ALTER TABLE {table.name} ADD PRIMARY KEY ({keys})")
                continue
            # SQLite cannot change a primary key in place: rebuild the table.
            old = f"{table.name}_before_epochs"
            c.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {old}")
            for index in table.indexes:
                c.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
            table.create(c)
            cols = [col.name for col in table.columns if col.name != "epoch"]
            names = ", ".join(f'"{n}"' for n in cols)
            c.exec_driver_sql(
                f"INSERT INTO {table.name} ({names}, epoch) SELECT {names}, 1 FROM {old}"
            )
            c.exec_driver_sql(f"DROP TABLE {old}")


def insert_ignore(engine: sa.Engine, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the engine's dialect: the idempotence of ingest."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def insert_ignore_sql(engine: sa.Engine, table: sa.Table) -> str:
    """The same as driver SQL, for executemany with plain tuples in column order."""
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    cols = ", ".join(f'"{c.name}"' for c in table.columns)
    marks = ", ".join(mark for _ in table.columns)
    return f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def upsert(engine: sa.Engine, table: sa.Table, keys: list[str], values: dict[str, Any]) -> Any:
    if engine.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        return pg.on_conflict_do_update(
            index_elements=keys, set_={k: pg.excluded[k] for k in values if k not in keys}
        )
    lite = sqlite.insert(table).values(**values)
    return lite.on_conflict_do_update(
        index_elements=keys, set_={k: lite.excluded[k] for k in values if k not in keys}
    )
