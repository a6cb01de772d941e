"""The HACCP log is append-only and tamper-evident; `haccp verify` names the first broken
record; `haccp report` produces CSV and a PDF that parses."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.store.schema import connect, migrate
from rules.cli import main
from rules.haccp import chain

T0 = 1_750_000_000.0
VENUE = """\
[venue]
id = "the-crown"
name = "The Crown"
timezone = "Europe/London"

[storage]
path = "store.db"
"""


def make_store(path: str, n: int = 6) -> None:
    conn = connect(path)
    migrate(conn)
    conn.execute("BEGIN")
    for i in range(n):
        chain.append(conn, T0 + i * 900, "walk-in", "reading", {"value": 3.0 + i / 10, "max": 4.0})
    chain.append(
        conn, T0 + n * 900, "walk-in", "gap", {"from": T0 + n * 900 - 900, "to": T0 + n * 900}
    )
    chain.append(conn, T0 + n * 900 + 5, "walk-in", "check", {"check": "opening", "by": "Jo"})
    conn.execute("COMMIT")
    conn.close()


def verify(path: str) -> chain.Verification:
    conn = connect(path, readonly=True)
    try:
        return chain.verify(conn)
    finally:
        conn.close()


def test_intact_chain_verifies(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    make_store(path)
    v = verify(path)
    assert v.ok and v.records == 8


def test_sql_edits_are_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    make_store(path)
    conn = connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE haccp_records SET data = '{}' WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM haccp_records WHERE seq = 3")
    conn.close()


def tamper(path: str, sql: str) -> None:
    conn = connect(path)
    conn.execute("DROP TRIGGER haccp_no_update")
    conn.execute("DROP TRIGGER haccp_no_delete")
    conn.execute(sql)
    conn.close()


@pytest.mark.parametrize(
    ("sql", "broken", "reason"),
    [
        ('UPDATE haccp_records SET data = \'{"max":4.0,"value":2.0}\' WHERE seq = 3', 3, "hash"),
        ("UPDATE haccp_records SET ts = ts + 1 WHERE seq = 5", 5, "hash"),
        ("DELETE FROM haccp_records WHERE seq = 4", 4, "missing"),
        ("UPDATE haccp_records SET kind = 'reading' WHERE seq = 7", 7, "hash"),
    ],
)
def test_tampering_names_the_first_broken_record(
    tmp_path: Path, sql: str, broken: int, reason: str
) -> None:
    path = str(tmp_path / "s.db")
    make_store(path)
    tamper(path, sql)
    v = verify(path)
    assert not v.ok and v.broken_seq == broken and reason in v.reason


def test_rewriting_a_record_and_its_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    make_store(path)
    conn = connect(path)
    prev = conn.execute("SELECT hash FROM haccp_records WHERE seq = 2").fetchone()[0]
    data = {"value": 2.0, "max": 4.0}
    h = chain.record_hash(prev, 3, T0 + 1800, "walk-in", "reading", data)
    conn.close()
    tamper(
        path,
        'UPDATE haccp_records SET data = \'{"max":4.0,"value":2.0}\', '
        f"hash = '{h}' WHERE seq = 3",
    )
    v = verify(path)
    assert v.broken_seq == 4 and "previous-hash" in v.reason


def test_cli_verify_and_report(tmp_path: Path, write_config, capsys) -> None:
    cfg = write_config(VENUE)
    make_store(str(tmp_path / "store.db"))
    assert main(["haccp", "verify", "--config", cfg]) == 0
    assert "intact: 8 record(s)" in capsys.readouterr().out
    out_csv = tmp_path / "r.csv"
    args = ["haccp", "report", "--config", cfg, "--from", "2025-06-15", "--to", "2025-06-15"]
    assert main([*args, "--format", "csv", "-o", str(out_csv)]) == 0
    rows = out_csv.read_text().splitlines()
    assert rows[0].startswith("seq,time,unit,unit_label,record,value_c")
    assert len(rows) == 9 and ",gap," in rows[7] and "opening" in rows[8]
    assert "2025-06-15T16:06:40+01:00" in rows[1]  # ISO time with the venue's zone
    out_pdf = tmp_path / "r.pdf"
    assert main([*args, "--format", "pdf", "-o", str(out_pdf)]) == 0
    assert out_pdf.read_bytes().startswith(b"%PDF-")
    tamper(str(tmp_path / "store.db"), "UPDATE haccp_records SET unit = 'x' WHERE seq = 2")
    assert main(["haccp", "verify", "--config", cfg]) == 1
    assert "BROKEN at record 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE haccp_records SET data = '{\"value\": NaN}' WHERE seq = 3", "holds NaN"),
        ('UPDATE haccp_records SET data = \'{"v": 1, "v": 2}\' WHERE seq = 3', "key 'v' twice"),
        ("UPDATE haccp_records SET data = '[1, 2]' WHERE seq = 3", "not an object"),
        ("UPDATE haccp_records SET data = X'00ff' WHERE seq = 3", "not JSON text"),
        ("UPDATE haccp_records SET ts = 'yesterday' WHERE seq = 3", "not a finite number"),
        ("UPDATE haccp_records SET unit = X'6869' WHERE seq = 3", "not a name"),
        ("UPDATE haccp_records SET hash = 'zz' WHERE seq = 3", "not 64 hex digits"),
        ("UPDATE haccp_records SET data = '{\"a\": Infinity}' WHERE seq = 3", "Infinity"),
    ],
)
def test_malformed_data_names_the_record_never_a_traceback(
    tmp_path: Path, sql: str, reason: str
) -> None:
    path = str(tmp_path / "s.db")
    make_store(path)
    tamper(path, sql)
    v = verify(path)
    assert (
        not v.ok and v.broken_seq == 3 and v.reason.startswith("malformed") and reason in v.reason
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    column=st.sampled_from(["seq", "ts", "unit", "kind", "data", "prev_hash", "hash"]),
    value=st.one_of(
        st.none(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.binary(max_size=20),
    ),
    row=st.integers(1, 8),
)
def test_verify_never_raises_whatever_a_column_holds(
    tmp_path: Path, column: str, value: object, row: int
) -> None:
    path = os.path.join(tempfile.mkdtemp(dir=tmp_path), "s.db")
    make_store(path)
    conn = connect(path)
    conn.execute("DROP TRIGGER haccp_no_update")
    try:
        conn.execute(f"UPDATE haccp_records SET {column} = ? WHERE seq = ?", (value, row))
    except (sqlite3.IntegrityError, OverflowError):  # SQLite refuses these itself
        conn.close()
        return
    conn.close()
    v = verify(path)
    assert v.ok or (v.broken_seq is not None and v.reason)
