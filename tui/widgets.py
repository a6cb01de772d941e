"""A unit tile: name, the temperature in big digits, the limit, status as icon + word, sparkline.

One widget per tile with a single render (not a tree of sub-widgets) keeps 200 tiles cheap."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.renderables.digits import Digits
from textual.widget import Widget

from tui.i18n import Translator
from tui.model import ICONS, Status, UnitView, c_to_venue


def big_digits(text: str) -> list[str]:
    """Three text rows of Textual's 3x3 digit font (readable from across the kitchen)."""
    segments = Digits(text).render(Style(bold=True))
    rows = "".join(s.text for s in segments if isinstance(s, Segment)).split("\n")
    return [*rows, "", "", ""][:3]


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
        assert v is not None
        t = self.t
        title = Text(v.label, style="bold", overflow="ellipsis", no_wrap=True)
        temp = "--.-" if v.temp is None else f"{v.temp:.1f}"
        rows = big_digits(temp)
        big = Text("\n".join([rows[0], f"{rows[1]} {v.unit}", rows[2]]), style="bold")
        if v.limit is None:
            limit = t("tile.no_limit")
        else:
            shown = f"{t.number(c_to_venue(v.limit.value_c, self.venue_unit))} {v.unit}"
            limit = t("tile.limit_max" if v.limit.upper else "tile.limit_min", limit=shown)
        status = f"{ICONS[v.status]} {t('status.' + v.status.value)}"
        if v.reason:
            status += f" · {t(v.reason)}"
        return Group(
            title,
            big,
            Text(limit, style="dim"),
            Text(status, style="bold reverse"),
            Text(v.spark or " ", style="dim"),
        )
