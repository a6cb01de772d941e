"""The report laid out as a PDF with fpdf2: tables whose cells wrap (a long corrective action
grows its row, never runs off the page), a header per unit, page numbers and the generation
time on every page. Core Helvetica (Latin-1: °, Italian accents) keeps the box free of font
files; anything outside Latin-1 is replaced, not dropped."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from rules.haccp.report import Report, UnitReport
from rules.haccp.report_text import TYPES

FONT = "helvetica"


def _l1(text: str) -> str:
    return (
        text.replace("\u2212", "-")
        .replace("\u2013", "-")
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


def _c(v: float | None, unit: bool = True) -> str:
    if v is None:
        return "-"
    return f"{v:.1f} °C" if unit else f"{v:.1f}"


class _Pdf(FPDF):
    def __init__(self, rep: Report) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.rep = rep
        self.set_auto_page_break(True, margin=14)
        self.set_title(_l1(f"{rep.t('title')} - {rep.venue}"))
        self.set_creator("BeerFlow Edge")

    def footer(self) -> None:
        rep = self.rep
        when = rep.local(rep.generated_at, "%Y-%m-%d %H:%M %Z")
        self.set_y(-10)
        self.set_font(FONT, size=7)
        self.set_text_color(90)
        self.cell(
            0,
            4,
            _l1(
                f"{rep.venue} - {rep.t('generated')} {when}"
                f" - {rep.t('page')} {self.page_no()}/{{nb}}"
            ),
            align="C",
        )
        self.set_text_color(0)

    def h1(self, text: str) -> None:
        self.set_font(FONT, "B", 15)
        self.multi_cell(0, 8, _l1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def h2(self, text: str) -> None:
        if self.get_y() > self.h - 50:
            self.add_page()
        self.ln(2)
        self.set_font(FONT, "B", 12)
        self.set_fill_color(230, 236, 242)
        self.multi_cell(0, 7, _l1(text), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def h3(self, text: str) -> None:
        if self.get_y() > self.h - 35:
            self.add_page()
        self.ln(1.5)
        self.set_font(FONT, "B", 9.5)
        self.multi_cell(0, 5, _l1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def para(self, text: str, size: float = 8.5, bold: bool = False) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, 4.2, _l1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(
        self, header: list[str], rows: list[list[str]], widths: tuple[float, ...], size: float = 8
    ) -> None:
        self.set_font(FONT, size=size)
        with self.table(
            col_widths=widths,
            line_height=size * 0.5,
            text_align="LEFT",
            first_row_as_headings=True,
            headings_style=_headings(),
            padding=0.8,
        ) as table:
            row = table.row()
            for h in header:
                row.cell(_l1(h))
            for r in rows:
                row = table.row()
                for cell in r:
                    row.cell(_l1(cell))


def _headings() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(242, 242, 242))


def render(rep: Report) -> bytes:
    pdf = _Pdf(rep)
    pdf.alias_nb_pages()
    pdf.add_page()
    t = rep.t
    pdf.h1(f"{t('title')} - {rep.venue}")
    pdf.para(
        f"{t('period')}: {rep.local(rep.start, '%Y-%m-%d')} - "
        f"{rep.local(rep.end - 1, '%Y-%m-%d')} ({rep.tz.key}).  "
        f"{t('generated')}: {rep.local(rep.generated_at, '%Y-%m-%d %H:%M %Z')}, "
        f"{t('from_cloud') if rep.source == 'cloud' else t('from_box')}."
    )
    c = rep.chain
    status = (
        f"{t('intact')} ({c.records} {t('records_verified')})"
        if c.ok
        else f"{t('broken')} {c.broken_seq}: {c.reason} ({c.records} {t('records_verified')})"
    )
    pdf.para(f"{t('chain')}: {status}", bold=True)
    if c.anchor_count is not None:
        pdf.para(
            f"{t('anchor')}: {c.anchor_count} {t('records_verified')}, "
            f"{rep.local(c.anchor_at, '%Y-%m-%d %H:%M %Z')}"
            + (f" - {c.anchor_note}" if c.anchor_note else "")
        )
    else:
        pdf.para(
            f"{t('anchor')}: {t('no_anchor')}" + (f" - {c.anchor_note}" if c.anchor_note else "")
        )
    pdf.h3(t("method"))
    pdf.para(t("method_text"), size=8)
    staff = sorted({str(r.data["by"]) for r in rep.records if r.data.get("by")})
    if staff:
        pdf.para(f"{t('staff')}: {', '.join(staff)}", size=8)
    _signoffs(pdf, rep)
    for uid in sorted(rep.units, key=lambda u: (u in ("venue", "thermometer"), u)):
        _unit(pdf, rep, rep.units[uid])
    return bytes(pdf.output())


def _signoffs(pdf: _Pdf, rep: Report) -> None:
    t = rep.t
    pdf.h3(t("signoffs_title"))
    rows = []
    for p in rep.signoffs:
        if p["signed"]:
            state = f"{t('signed')}: {p['by']}, {rep.local(p['at'])}"
        elif p["ended"]:
            state = t("unsigned")
        else:
            state = t("not_ended")
        rv = p["review"]
        review = (
            f"{t('excursion_word')}: {rv['excursions']} "
            f"({rv['excursions_without_action']} {t('without_action')}); "
            f"{t('failed_checks')}: {rv['failed_checks']} "
            f"({rv['failed_checks_without_action']} {t('without_action')}); "
            f"{t('missed')}: {rv['missed_checks']}; {t('gaps')}: {rv['gaps']}"
        )
        rows.append([p["period"], state, review])
    pdf.grid([t("period"), t("signed"), t("review")], rows, (22, 60, 108))


def _unit(pdf: _Pdf, rep: Report, u: UnitReport) -> None:
    t = rep.t
    cfg = u.config
    pdf.h2(f"{t('unit')}: {u.label} ({u.unit})")
    if cfg:
        kind = TYPES[rep.lang].get(str(cfg.get("type")), str(cfg.get("type", "")))
        lim = []
        if cfg.get("max_c") is not None:
            lim.append(f"max {_c(cfg['max_c'])}")
        if cfg.get("min_c") is not None:
            lim.append(f"min {_c(cfg['min_c'])}")
        delay = cfg.get("delay_s")
        every = cfg.get("record_every_s")
        sup = ", ".join(t(str(x)) for x in cfg.get("suppression") or []) or t("none")
        pdf.para(
            f"{t('type')}: {kind}.  {t('limits')}: {' / '.join(lim) or '-'}"
            + (f" ({int(delay) // 60} {t('minutes')})" if delay else "")
            + f".  {t('sensor')}: {cfg.get('device')}/{cfg.get('point')}."
            + (f"  {t('recording')} {int(every) // 60} {t('minutes')}." if every else "")
            + f"  {t('suppression')}: {sup}."
        )
    if u.days:
        pdf.h3(t("daily"))
        max_c = cfg.get("max_c")
        min_c = cfg.get("min_c")
        excursion_days = {d.date for d in u.days.values() if d.excursions}
        rows = []
        noted = False
        for day in sorted(u.days.values(), key=lambda d: d.date):
            over = (max_c is not None and day.high is not None and day.high > max_c) or (
                min_c is not None and day.low is not None and day.low < min_c
            )
            mark = ""
            if over and day.date not in excursion_days:
                why = day.high_suppressed if max_c is not None else day.low_suppressed
                names = ", ".join(t(w) if w in ("defrost", "door", "start-up") else w for w in why)
                mark, noted = (f" * ({names})" if why else " *"), True
            rows.append(
                [
                    day.date,
                    _c(day.am, False)
                    + (f" ({rep.local(day.am_at, '%H:%M')})" if day.am_at else ""),
                    _c(day.pm, False)
                    + (f" ({rep.local(day.pm_at, '%H:%M')})" if day.pm_at else ""),
                    _c(day.low, False),
                    _c(day.high, False) + mark,
                    str(day.readings),
                    str(day.gaps),
                    f"{day.gap_minutes:.0f}",
                    str(day.excursions),
                ]
            )
        pdf.grid(
            [
                t("date"),
                t("am"),
                t("pm"),
                t("min"),
                t("max"),
                t("readings"),
                t("gaps"),
                t("gap_min"),
                t("excursions"),
            ],
            rows,
            (22, 25, 25, 14, 26, 17, 14, 17, 20),
            size=7.5,
        )
        if noted:
            pdf.para(t("suppressed_note"), size=7)
    if u.excursions:
        pdf.h3(t("excursions_title"))
        rows = []
        for ex in sorted(u.excursions.values(), key=lambda e: e.start or 0):
            dur = "-"
            if ex.start is not None:
                stop = ex.end if ex.end is not None else None
                dur = f"{(stop - ex.start) / 60:.0f} {t('minutes')}" if stop else t("ongoing")
            ack = f"{ex.acked_by}, {rep.local(ex.acked_at)}" if ex.acked_by else t("not_recorded")
            if ex.action:
                act = (
                    f"{ex.action} ({t('product')}: {ex.disposition}"
                    + (
                        f", {t('verified')} {_c(ex.verification)}"
                        if ex.verification is not None
                        else ""
                    )
                    + f") - {ex.action_by}, {rep.local(ex.action_at)}"
                )
            else:
                act = t("not_recorded")
            rows.append(
                [
                    f"#{ex.alarm_id} {ex.message}",
                    rep.local(ex.start),
                    rep.local(ex.end) if ex.end else t("ongoing"),
                    dur,
                    _c(ex.worst),
                    _c(ex.limit),
                    ack,
                    act,
                ]
            )
        pdf.grid(
            [
                t("excursion_word"),
                t("start"),
                t("end"),
                t("duration"),
                t("peak"),
                t("limit"),
                t("acknowledged"),
                t("action"),
            ],
            rows,
            (28, 19, 19, 15, 15, 14, 28, 52),
            size=7,
        )
    if u.checks or u.missed:
        pdf.h3(t("checks_title"))
        rows = []
        for r in u.checks:
            d = r.data
            res = ""
            if isinstance(d.get("passed"), bool):
                res = t("pass") if d["passed"] else t("fail")
            details = []
            for it in d.get("items", []) if isinstance(d.get("items"), list) else []:
                if isinstance(it, dict):
                    v = f" {_c(it.get('value'))}" if it.get("value") is not None else ""
                    lims = [f"{k} {_c(it.get(k))}" for k in ("min", "max") if it.get(k) is not None]
                    if lims:
                        v += f" ({t('limit').lower()} {', '.join(lims)})"
                    ok = t("pass") if it.get("passed") else t("fail")
                    details.append(f"{it.get('label', it.get('item'))}{v}: {ok}")
            fix = u.actions.get(r.seq)
            if fix is not None:
                fd = fix.data
                details.append(
                    f"{t('action')}: {fd.get('action')} ({t('product')}: {fd.get('disposition')})"
                    f" - {fd.get('by')}, {rep.local(fix.ts)}"
                )
            elif d.get("passed") is False:
                details.append(f"{t('action')}: {t('not_recorded')}")
            if d.get("notes"):
                details.append(str(d["notes"]))
            rows.append(
                [
                    rep.local(r.ts),
                    str(d.get("check", "")),
                    str(d.get("by", "")),
                    res,
                    "; ".join(details),
                ]
            )
        if rows:
            pdf.grid(
                [t("time"), t("check"), t("by"), t("result"), t("details")],
                rows,
                (24, 20, 32, 18, 96),
                size=7,
            )
        if u.missed:
            pdf.h3(t("missed_title"))
            pdf.grid(
                [t("date"), t("check"), t("due")],
                [
                    [
                        str(m.data.get("day", "")),
                        str(m.data.get("check_label") or m.data.get("check", "")),
                        rep.local(m.data.get("due_at")),
                    ]
                    for m in u.missed
                ],
                (30, 90, 70),
                size=7.5,
            )
    if u.gaps:
        pdf.h3(t("gaps_title"))
        pdf.grid(
            [t("start"), t("end"), t("duration")],
            [[rep.local(a), rep.local(b), f"{(b - a) / 60:.0f} {t('minutes')}"] for a, b in u.gaps],
            (60, 60, 70),
            size=7.5,
        )
    if u.other:
        pdf.h3(t("other_title"))
        rows = []
        for r in u.other:
            d = r.data
            bits = ", ".join(
                f"{k} {d[k]}" for k in ("step", "value", "minutes", "verdict", "days") if k in d
            )
            rows.append([rep.local(r.ts), r.kind, bits])
        pdf.grid([t("time"), t("check"), t("details")], rows, (30, 40, 120), size=7.5)
