"""A minimal PDF writer for text reports: Helvetica, A4 pages, no dependencies.

Enough for an inspector's printout (headings, monospaced tables in Courier); text is encoded
as WinAnsi (Latin-1), so °C prints; characters outside it are replaced with '?'.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN = 40
LEADING = 12


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    font: str = "F2"  # F1 Helvetica-Bold (headings), F2 Courier (tables/body)
    size: float = 9.0


def _escape(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _paginate(lines: list[Line]) -> list[list[Line]]:
    pages: list[list[Line]] = [[]]
    y: float = PAGE_H - MARGIN
    for ln in lines:
        step = ln.size + 3 if ln.font == "F1" else LEADING
        if y - step < MARGIN:
            pages.append([])
            y = PAGE_H - MARGIN
        pages[-1].append(ln)
        y -= step
    return pages


def render(lines: list[Line], title: str = "") -> bytes:
    pages = _paginate(lines)
    objs: list[bytes] = []  # object n is objs[n-1]
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(b"")  # pages tree, filled below
    objs.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    )
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>")
    kids: list[int] = []
    for n, page in enumerate(pages, start=1):
        ops = [b"BT"]
        y: float = PAGE_H - MARGIN
        for ln in page:
            step = ln.size + 3 if ln.font == "F1" else LEADING
            ops.append(
                b"/%s %.1f Tf 1 0 0 1 %d %.1f Tm (%s) Tj"
                % (ln.font.encode(), ln.size, MARGIN, y - ln.size, _escape(ln.text))
            )
            y -= step
        footer = f"{title}  page {n}/{len(pages)}"
        ops.append(b"/F2 7 Tf 1 0 0 1 %d %d Tm (%s) Tj" % (MARGIN, MARGIN // 2, _escape(footer)))
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objs)
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % (PAGE_W, PAGE_H, content)
        )
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)
