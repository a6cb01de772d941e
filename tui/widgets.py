"""A unit tile: name, the temperature in big digits, the limit, status as icon + word, sparkline.

One widget per tile with a single render (not a tree of sub-widgets) keeps 200 tiles cheap. On a
small screen (`compact`) the tile keeps every line but the big digits."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.i18n import Translator
from tui.model import ICONS, Limit, Status, UnitView, c_to_venue

# A 3×5 dot font. Each dot is a space in reverse video: a solid cell in any terminal and a
# solid rectangle in an SVG screenshot (block characters leave gaps between the rows there).
FONT: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "-": ("...", "...", "###", "...", "..."),
    ".": (".", ".", ".", ".", "#"),
    ",": (".", ".", ".", ".", "#"),
    " ": ("...",) * 5,
}
DIGIT_ROWS = 5


def big_digits(text: str) -> list[str]:
    """The dot rows of `text` ('#' on, '.' off, one column between glyphs); characters the font
    does not know are left out."""
    glyphs = [FONT[c] for c in text if c in FONT]
    return [".".join(g[row] for g in glyphs) for row in range(DIGIT_ROWS)]


def dots(row: str) -> Text:
    out = Text(no_wrap=True, overflow="crop")
    for dot in row:
        out.append(" ", style="reverse" if dot == "#" else "")
    return out


def limit_text(
    t: Translator, limit: Limit | None, unit: str, venue_unit: str, short: bool = False
) -> str:
    if limit is None:
        return "" if short else t("tile.no_limit")

    def shown(c: float) -> str:
        return t.number(c_to_venue(c, venue_unit))

    if limit.max_c is not None and limit.min_c is not None:
        if short:
            return f"{shown(limit.min_c)}–{shown(limit.max_c)} {unit}"
        return t("tile.limit_band", low=shown(limit.min_c), high=shown(limit.max_c), unit=unit)
    if limit.max_c is not None:
        text = f"{shown(limit.max_c)} {unit}"
        return f"≤ {text}" if short else t("tile.limit_max", limit=text)
    assert limit.min_c is not None
    text = f"{shown(limit.min_c)} {unit}"
    return f"≥ {text}" if short else t("tile.limit_min", limit=text)


class UnitTile(Widget):
    view: reactive[UnitView | None] = reactive(None, layout=False)

    def __init__(self, view: UnitView, t: Translator, unit: str) -> None:
        super().__init__(id=f"tile-{view.device_id}", classes="tile")
        self.t = t
        self.venue_unit = unit
        self.set_reactive(UnitTile.view, view)
        self._apply_class(view)

    def show(self, view: UnitView) -> None:
        if view != self.view:
            self.view = view
            self._apply_class(view)

    def _apply_class(self, view: UnitView) -> None:
        for s in Status:
            self.set_class(view.status is s, f"-{s.value}")

    def render(self) -> RenderableType:
        v = self.view
        if v is None:
            return Text("")
        t = self.t
        title = Text(v.label, style="bold", overflow="ellipsis", no_wrap=True)
        temp = "--.-" if v.temp is None else t.number(v.temp)
        limit = limit_text(t, v.limit, v.unit, self.venue_unit)
        status = f"{ICONS[v.status]} {t('status.' + v.status.value)}"
        if v.reason:
            status += f" · {t(v.reason)}"
        status_line = Text(status, style="bold reverse", overflow="ellipsis", no_wrap=True)
        spark = Text(v.spark or " ", style="dim", no_wrap=True, overflow="crop")
        if self.has_class("-compact"):
            short = limit_text(t, v.limit, v.unit, self.venue_unit, short=True)
            line = Text.assemble((f"{temp} {v.unit}", "bold"), "  ", (short, "dim"))
            line.no_wrap, line.overflow = True, "ellipsis"
            return Group(title, line, status_line, spark)
        rows = [dots(r) for r in big_digits(temp)]
        rows[-1].append(f" {v.unit}", style="bold")
        return Group(
            title,
            *rows,
            Text(limit, style="dim", no_wrap=True, overflow="ellipsis"),
            status_line,
            spark,
        )
