"""The inspector's report over a month of records: rendered by fpdf2, read back with pypdfium2
(text per page and pixels), in English and Italian, with what an environmental health officer
checks first; and the readable CSV beside it."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from edge_agent.store.schema import connect, migrate
from rules.cli import main
from tests import haccp_month as hm

VENUE = """\
[venue]
id = "the-crown"
name = "The Crown"
timezone = "Europe/London"

[storage]
path = "store.db"
"""
ARGS = ["--from", "2026-03-01", "--to", "2026-03-31"]


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("month")
    conn = connect(str(d / "store.db"))
    migrate(conn)
    hm.fill(conn)
    conn.close()
    return d


def pdf_text(path: Path) -> list[str]:
    doc = pdfium.PdfDocument(str(path))
    try:
        pages = []
        for i in range(len(doc)):
            page = doc[i]
            pages.append(page.get_textpage().get_text_range())
            ink = page.render(scale=0.3).to_numpy()
            assert ink.min() < 100  # every page carries print
        return pages
    finally:
        doc.close()


def report(month: Path, write_config, *extra: str) -> Path:
    cfg = write_config(VENUE)
    out = month / f"r-{'-'.join(extra) or 'en'}.pdf"
    assert (
        main(["haccp", "report", "--config", cfg, *ARGS, "--format", "pdf", "-o", str(out), *extra])
        == 0
    )
    return out


@pytest.fixture
def write_config(month: Path):  # the store lives in the module's directory
    def write(text: str) -> str:
        p = month / "venue.toml"
        p.write_text(text)
        return str(p)

    return write


def test_the_month_report_carries_what_an_inspector_checks(month: Path, write_config) -> None:
    pages = pdf_text(report(month, write_config))
    text = "\n".join(pages)
    flat = " ".join(text.split())
    # heading: venue, period, generation time, chain status, monitoring method, staff
    assert "HACCP temperature and food-safety records - The Crown" in flat
    assert "Period: 2026-03-01 - 2026-03-31 (Europe/London)" in flat
    import datetime as dt

    today = dt.datetime.now(dt.UTC).astimezone(hm.ZONE).strftime("%Y-%m-%d")
    assert f"Generated: {today}" in flat and "Record chain: INTACT" in flat
    assert "Monitoring method" in flat and "hash-chained (SHA-256)" in flat
    assert "Jo Bianchi (jo), Sam Okafor (12)" in flat
    # per unit: label, type, limit with the unit, the daily log in °C
    assert "Unit: Walk-in cold room (walk-in)" in flat
    assert "Type: cold holding (fridge). Critical limit: max 8.0 °C (30 min)" in flat
    assert "Daily log (°C)" in flat and "Alarm suppression: defrost, door, start-up" in flat
    assert "Unit: Chest freezer (freezer)" in flat
    # defrost maxima above the limit without an alarm are explained
    assert "9.8 * (defrost)" in flat
    assert "* maximum above the limit without an alarm: during defrost" in flat
    # the excursion: start, end, duration, the recorded peak, the whole corrective action
    assert "2026-03-10 14:00" in flat and "2026-03-10 15:15" in flat and "75 min" in flat
    assert "11.4 °C" in flat and "8.0 °C" in flat
    assert "two trays of cooked ham discarded as a precaution" in flat  # wrapped, not cut
    assert "Sam Okafor (12), 2026-03-10 14:36" in flat
    # checks: results in words, the failed probe with its limit and action, the missed one
    assert "Probe temperature 22.0 °C (limit max 8.0 °C): FAIL" in flat
    assert "Corrective action: Probe re-checked in the food" in flat
    assert "Checks due but not done (missed)" in flat and "2026-03-20 Closing checks" in flat
    assert "True" not in flat and "passed=" not in flat and "{" not in flat
    # gaps, manager verification, the unsigned week flagged
    assert "150 min" in flat
    assert "2026-W11 Signed: Jo Bianchi (jo), 2026-03-16 09:00" in flat
    assert "2026-W13 NOT SIGNED" in flat
    assert "Page 1/" in pages[0]


def test_the_report_in_italian(month: Path, write_config) -> None:
    flat = " ".join("\n".join(pdf_text(report(month, write_config, "--lang", "it"))).split())
    assert "Registro HACCP: temperature e autocontrollo - The Crown" in flat
    assert "Apparecchiatura: Walk-in cold room" in flat and "conservazione a freddo" in flat
    assert "Scheda giornaliera (°C)" in flat and "NON FIRMATO" in flat
    assert "* (sbrinamento)" in flat and "Sospensione allarmi: sbrinamento, porta, avvio" in flat
    assert "Non conformità e azioni correttive" in flat and "NON CONFORME" in flat


def test_the_csv_is_readable(month: Path, write_config) -> None:
    cfg = write_config(VENUE)
    out = month / "r.csv"
    assert main(["haccp", "report", "--config", cfg, *ARGS, "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) > 6000
    first = rows[0]
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    summer = [r for r in rows if r["time"].startswith("2026-03-30")]
    assert summer and summer[0]["time"].endswith("+01:00")  # BST after the clocks change
    assert all("{" not in r["details"] for r in rows)
    probe = next(r for r in rows if r["record"] == "check" and r["result"] == "FAIL")
    assert probe["unit_label"] == "Walk-in cold room" and probe["value_c"] == "22.0"
    assert probe["limit_c"] == "8.0" and probe["by"] == "Sam Okafor (12)"
    end = next(r for r in rows if r["record"] == "excursion_end")
    assert "Peak 11.4 °C, 75.0 min over the limit" in end["details"]


def test_a_broken_chain_says_so_on_the_report(tmp_path: Path, month: Path, write_config) -> None:
    import shutil

    d = tmp_path / "copy"
    d.mkdir()
    shutil.copy(month / "store.db", d / "store.db")
    conn = sqlite3.connect(d / "store.db")
    conn.execute("DROP TRIGGER haccp_no_update")
    conn.execute("UPDATE haccp_records SET data = replace(data, '22.0', '4.0') WHERE kind='check'")
    conn.commit()
    conn.close()
    cfg = d / "venue.toml"
    cfg.write_text(VENUE)
    out = d / "r.pdf"
    assert (
        main(["haccp", "report", "--config", str(cfg), *ARGS, "--format", "pdf", "-o", str(out)])
        == 1
    )
    flat = " ".join("\n".join(pdf_text(out)).split())
    assert "Record chain: BROKEN at record" in flat and "content does not match its hash" in flat
