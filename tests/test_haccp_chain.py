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
from rules.haccp import chain, report
from rules.haccp.pdf import Line, render

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
    assert rows[0].startswith("seq,local_time,unit,kind")
    assert len(rows) == 9 and ",gap," in rows[7] and "opening" in rows[8]
    out_pdf = tmp_path / "r.pdf"
    assert main([*args, "--format", "pdf", "-o", str(out_pdf)]) == 0
    pdf = out_pdf.read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"Gaps in monitoring" in pdf and b"INTACT" in pdf
    tamper(str(tmp_path / "store.db"), "UPDATE haccp_records SET unit = 'x' WHERE seq = 2")
    assert main(["haccp", "verify", "--config", cfg]) == 1
    assert "BROKEN at record 2" in capsys.readouterr().out


def test_pdf_cross_reference_table_points_at_every_object() -> None:
    lines = [Line("Heading", "F1", 14)] + [Line(f"row {i} 5.0 °C (ok)") for i in range(200)]
    pdf = render(lines, "t")
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref:].startswith(b"xref\n")
    table = pdf[xref:].split(b"\n")
    count = int(table[1].split()[1])
    for i in range(1, count):
        off = int(table[2 + i].split()[0])
        assert pdf[off:].startswith(b"%d 0 obj" % i)
    assert b"/Count 4" in pdf  # 200 lines of 12 pt: 63 a page on A4
    assert "°C".encode("latin-1") in pdf


def test_report_pairs_excursions_with_their_corrective_actions(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    conn = connect(path)
    migrate(conn)
    conn.execute("BEGIN")
    chain.append(
        conn, T0, "walk-in", "excursion_start", {"alarm_id": 1, "limit": 8.0, "message": "warm"}
    )
    chain.append(conn, T0 + 60, "walk-in", "acknowledged", {"alarm_id": 1, "by": "Sam"})
    chain.append(
        conn,
        T0 + 120,
        "walk-in",
        "corrective_action",
        {
            "alarm_id": 1,
            "by": "Sam",
            "action": "moved stock",
            "disposition": "moved",
            "verification": 4.0,
        },
    )
    chain.append(
        conn,
        T0 + 900,
        "walk-in",
        "excursion_end",
        {"alarm_id": 1, "peak": 11.0, "minutes_over_limit": 30.0},
    )
    conn.execute("COMMIT")
    rep = report.build(conn, T0 - 1, T0 + 1000, "Europe/London", "The Crown")
    conn.close()
    ex = rep.units["walk-in"].excursions[1]
    assert ex["corrective_action"]["disposition"] == "moved" and ex["excursion_end"]["peak"] == 11.0
    pdf = report.to_pdf(rep)
    assert b"moved stock" in pdf and b"acknowledged by Sam" in pdf


def test_pdf_renders_with_pdfium() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    lines = [Line("HACCP", "F1", 15)] + [Line(f"{i:>3}  3.5 °C  ok") for i in range(100)]
    doc = pdfium.PdfDocument(render(lines, "t"))
    try:
        assert len(doc) == 2
        page = doc[0]
        text = page.get_textpage().get_text_range()
        assert "HACCP" in text and "3.5 °C" in text
        bitmap = page.render(scale=0.5).to_numpy()
        assert bitmap.shape[0] > 100 and bitmap.min() < 128  # some ink on the page
    finally:
        doc.close()


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
