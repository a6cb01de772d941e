"""The six views. Attributes down, messages up: the app hands each view a `ViewState` (the last
snapshot, the words, the tiles) and the view draws itself from that alone; what staff press
bubbles up to the app as Textual messages (button presses). No view calls the API or reads the
app's attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Static

from tui.api_client import Alarm, HaccpCheck
from tui.guard import Guarded
from tui.i18n import Translator
from tui.model import (
    BATTERY_NAMES,
    ICONS,
    RSSI_NAMES,
    Status,
    UnitView,
    check_state,
    open_alarms,
    order_tiles,
    point_of_kind,
    sort_alarms,
    stock_items,
    summary_counts,
)
from tui.poller import Snapshot
from tui.venue_time import VENUE_TIME
from tui.widgets import UnitTile

TILE_WIDTH = 30
COMPACT_TILE_WIDTH = 26
DEVICE_COLUMNS = (
    "device",
    "zone",
    "state",
    "last_seen",
    "battery",
    "signal",
    "polls",
    "errors",
    "malformed",
    "last_error",
)
HACCP_BUTTONS = (
    ("mark-done", "haccp.mark_done"),
    ("probe", "haccp.probe"),
    ("log", "haccp.log"),
    ("export", "haccp.export"),
)
ALARM_COLUMNS = ("severity", "unit", "what", "since", "state", "by")
# How soon a check counts as due for the overview's order (it is on the list all day).
DUE_SOON_S = 3600.0


@dataclass(frozen=True)
class ViewState:
    """Everything a view draws from, handed down by the app."""

    t: Translator
    venue_unit: str
    snapshot: Snapshot | None = None
    kinds: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tiles: Sequence[UnitView] = ()
    compact: bool = False

    def labels(self) -> dict[str, str]:
        snap = self.snapshot
        if snap is None:
            return {}
        out = {d.id: d.label for d in snap.devices}
        out.update({u.id: u.label for u in snap.units})
        return out


class View(Guarded, Vertical):
    """Base: `show(state)` stores the state and draws; `draw()` redraws from it."""

    state: ViewState | None = None

    def show(self, state: ViewState) -> None:
        self.state = state
        if self.is_mounted:
            self.draw()

    def draw(self) -> None:
        # Each screen's view overrides this (Textual's metaclass rules out abc here).
        raise NotImplementedError(f"{type(self).__name__} must define draw()")

    def not_available(self, t: Translator, what: str) -> str:
        return t("banner.not_available", what=what)


Rows = Sequence[tuple[str, list[Any]]]


class Table(Guarded, DataTable[Any]):
    """A DataTable that ignores a tap on a cell or header drawn before the table was refilled
    (Textual's own click handler indexes the new columns with the old position)."""

    async def _on_click(self, event: events.Click) -> None:
        # Textual calls each class's handler in turn; prevent_default skips DataTable's.
        meta = event.style.meta
        column, row = meta.get("column", -1), meta.get("row", -1)
        if column >= len(self.ordered_columns) or row >= self.row_count:
            event.prevent_default()


def _fill(table: DataTable[Any], columns: Sequence[str], rows: Rows) -> None:
    """Replace a table's content, keeping the cursor row (staff may be about to press a button).
    The columns are rebuilt only when their titles change (the language was switched)."""
    cursor = table.cursor_row
    if [str(c.label) for c in table.ordered_columns] != list(columns):
        table.clear(columns=True)
        table.add_columns(*columns)
    else:
        table.clear()
    for key, row in rows:
        table.add_row(*row, key=key)
    if rows:
        table.move_cursor(row=min(cursor, len(rows) - 1))


def due_devices(snap: Snapshot | None) -> set[str]:
    """Devices whose HACCP unit has a check overdue or due within the hour."""
    if snap is None or snap.checks is None:
        return set()
    now = snap.agent_now
    if now is None:
        return set()
    unit_device = {u.id: u.device for u in snap.units}
    return {
        unit_device.get(c.unit, c.unit)
        for c in snap.checks
        if c.done_at is None and c.due_at is not None and c.due_at <= now + DUE_SOON_S
    }


class OverviewView(View):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="tiles-scroll"):
            yield Grid(id="tiles")

    def on_resize(self) -> None:
        compact = self.state.compact if self.state else False
        width = COMPACT_TILE_WIDTH if compact else TILE_WIDTH
        self.query_one("#tiles", Grid).styles.grid_size_columns = max(1, self.size.width // width)

    def draw(self) -> None:
        state = self.state
        if state is None:
            return
        self.on_resize()
        views = order_tiles(state.tiles, due_devices(state.snapshot))
        grid = self.query_one("#tiles", Grid)
        tiles = {w.id: w for w in grid.query(UnitTile)}
        wanted = [f"tile-{v.device_id}" for v in views]
        new: list[UnitTile] = []
        for v in views:
            tile = tiles.pop(f"tile-{v.device_id}", None)
            if tile is None:
                tile = UnitTile(v, state.t, state.venue_unit)
                new.append(tile)
            else:
                tile.show(v)
            tile.set_class(state.compact, "-compact")
        for gone in tiles.values():
            gone.remove()
        if new:
            grid.mount_all(new)
        # Urgent first: reorder only when the order changed (a new alarm, a cleared one).
        current = [w.id for w in grid.children if isinstance(w, UnitTile)]
        if current != wanted and not new:
            rank = {tid: i for i, tid in enumerate(wanted)}
            grid.sort_children(key=lambda w: rank.get(w.id or "", len(rank)))
        elif new:
            self.call_after_refresh(self.draw)

    def retranslate(self) -> None:
        for tile in self.query(UnitTile):
            tile.refresh()


def summary_line(t: Translator, alarms: int, to_check: int, offline: int, total: int) -> str:
    parts = []
    if alarms:
        parts.append(t.plural("summary.alarms", alarms))
    if to_check:
        parts.append(t("summary.to_check", n=to_check))
    if offline:
        parts.append(t("summary.offline", n=offline))
    if parts:
        return " · ".join(parts)
    return t.plural("summary.all_ok", total)


def summary_text(state: ViewState) -> tuple[str, str]:
    """The header: the one alarm count (what the Alarms screen lists), tiles to check, tiles
    without signal; one colour for the worst."""
    snap = state.snapshot
    counts = summary_counts(state.tiles)
    alarms = open_alarms(snap.alarms if snap else None)
    warning, offline = counts[Status.WARNING], counts[Status.OFFLINE]
    text = summary_line(state.t, alarms, warning, offline, len(state.tiles))
    if alarms:
        return f"{ICONS[Status.ALARM]} {text}", "-alarm"
    if warning or offline:
        return f"{ICONS[Status.WARNING]} {text}", "-warning"
    return f"{ICONS[Status.OK]} {text}", "-ok"


def _number(t: Translator, value: Any, unit: str) -> str:
    """One way to write a point's value: whole percentages, one decimal otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value} {unit}".strip()
    decimals = 0 if unit in ("%", "dBm") else 1
    return f"{t.number(float(value), decimals)} {unit}".strip()


class DevicesView(View):
    def compose(self) -> ComposeResult:
        yield Table(id="devices-table", cursor_type="row", zebra_stripes=True)

    def draw(self) -> None:
        state = self.state
        snap = state.snapshot if state else None
        if state is None or snap is None:
            return
        t = state.t
        now = snap.agent_now
        by_dev: dict[str, dict[str, Any]] = {}
        for r in snap.latest:
            by_dev.setdefault(r.device, {})[r.point] = r
        rows = []
        for d in snap.devices:
            points = by_dev.get(d.id, {})
            kinds: Mapping[str, str] = state.kinds.get(d.profile, {})
            battery = point_of_kind(points, kinds, "battery", BATTERY_NAMES)
            rssi = point_of_kind(points, kinds, "rssi", RSSI_NAMES)
            status = (
                t("devices.disabled")
                if not d.enabled
                else t("devices.online" if d.connected else "devices.offline")
            )
            seen = None if d.last_seen is None or now is None else now - d.last_seen
            rows.append(
                (
                    d.id,
                    [
                        d.label,
                        d.zone,
                        status,
                        t.age(seen) if d.last_seen is not None else t("age.never"),
                        "—" if battery is None else _number(t, battery.value, battery.unit),
                        "—" if rssi is None else _number(t, rssi.value, rssi.unit),
                        str(d.polls),
                        str(d.errors),
                        str(d.malformed),
                        d.last_error or "",
                    ],
                )
            )
        cols = [t(f"devices.col.{c}") for c in DEVICE_COLUMNS]
        _fill(self.query_one(DataTable), cols, rows)


class StockView(View):
    def compose(self) -> ComposeResult:
        yield Static("", id="stock-note", classes="note")
        yield Table(id="stock-table", zebra_stripes=True)

    def draw(self) -> None:
        state = self.state
        snap = state.snapshot if state else None
        if state is None or snap is None:
            return
        t = state.t
        items = stock_items(snap.devices, snap.latest, state.kinds)
        self.query_one("#stock-note", Static).update("" if items else t("stock.none"))
        now = snap.agent_now
        rows = [
            (
                f"{s.device_id}/{s.point}",
                [
                    f"{s.label} · {t.point_name(s.point)}",
                    _number(t, 0.0 if abs(s.value) < 0.05 else s.value, s.unit),
                    t.age(None if now is None else now - s.ts),
                ],
            )
            for s in items
        ]
        cols = [t(f"stock.col.{c}") for c in ("item", "remaining", "updated")]
        _fill(self.query_one(DataTable), cols, rows)


class SyncView(View):
    def compose(self) -> ComposeResult:
        yield Static("", id="sync-state", classes="big-note")
        yield Static("", id="sync-last", classes="note")
        yield Table(id="sync-table", zebra_stripes=True)

    def draw(self) -> None:
        state = self.state
        snap = state.snapshot if state else None
        if state is None or snap is None:
            return
        t = state.t
        sync = snap.sync
        table = self.query_one(DataTable)
        status = self.query_one("#sync-state", Static)
        if sync is None:
            status.update(self.not_available(t, "sync"))
            self.query_one("#sync-last", Static).update("")
            table.display = False
            return
        table.display = True
        status.update(t("sync.online" if sync.online else "sync.offline"))
        last = (
            None
            if sync.last_success is None or snap.agent_now is None
            else (snap.agent_now - sync.last_success)
        )
        self.query_one("#sync-last", Static).update(t("sync.last_success", age=t.age(last)))
        rows = [(k, [k, str(v)]) for k, v in sorted(sync.backlog.items())]
        _fill(table, [t("sync.col.stream"), t("sync.col.backlog")], rows)


class AlarmsView(View):
    def compose(self) -> ComposeResult:
        yield Static("", id="alarms-note", classes="note")
        yield Table(id="alarms-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="actions"):
            yield Button("", id="ack", variant="warning")
            yield Button("", id="corrective", variant="primary")
        yield Static("", id="alarms-recent-title", classes="section-title")
        yield Table(id="alarms-recent", cursor_type="none", zebra_stripes=True)

    def _rows(self, state: ViewState, alarms: Sequence[Alarm]) -> Rows:
        t, snap = state.t, state.snapshot
        assert snap is not None
        labels = state.labels()
        now = snap.agent_now
        compact = state.compact
        rows = []
        for a in alarms:
            by = " / ".join(dict.fromkeys(x for x in (a.acknowledged_by, a.action_by) if x))
            unit = labels.get(a.unit, "") or labels.get(a.device, a.device)
            row = [
                t(f"severity.{a.severity}")[: 1 if compact else None],
                unit,
                _clip(a.message or a.point, 60),
                t.age(None if now is None else now - a.raised_at),
                t(f"alarm.state.{a.state}"),
                _clip(by, 40),
            ]
            if compact:  # 80 columns: the message names the unit; short state and names
                row = [row[0], _clip(row[2], 26), row[3], _clip(row[4], 13), _clip(by, 12)]
            rows.append((a.id, row))
        return rows

    def draw(self) -> None:
        state = self.state
        if state is None:
            return
        t = state.t
        self.query_one("#ack", Button).label = t("alarms.ack")
        self.query_one("#corrective", Button).label = t("alarms.action")
        self.query_one("#alarms-recent-title", Static).update(t("alarms.recent"))
        snap = state.snapshot
        if snap is None:
            return
        note = self.query_one("#alarms-note", Static)
        table = self.query_one("#alarms-table", DataTable)
        recent = self.query_one("#alarms-recent", DataTable)
        if snap.alarms is None:
            note.update(self.not_available(t, "alarms"))
            for w in (table, recent, self.query_one(".actions")):
                w.display = False
            return
        for w in (table, recent, self.query_one(".actions")):
            w.display = True
        alarms = sort_alarms(snap.alarms)
        note.update("" if alarms else t("alarms.none"))
        cols = [t(f"alarms.col.{c}") for c in ALARM_COLUMNS]
        if state.compact:
            cols = ["!", cols[2], cols[3], cols[4], t("alarms.col.by_short")]
        _fill(table, cols, self._rows(state, alarms))
        open_ids = {a.id for a in alarms}
        done = [a for a in snap.recent_alarms if a.id not in open_ids]
        _fill(recent, cols, self._rows(state, done))

    def selected(self) -> str | None:
        table = self.query_one("#alarms-table", DataTable)
        if not table.display or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


CHECK_MARKS = {"done": "-done", "overdue": "-overdue", "due": "-due"}


class HaccpView(View):
    def compose(self) -> ComposeResult:
        yield Static("", id="haccp-title", classes="section-title")
        yield Static("", id="haccp-note", classes="note")
        yield Table(id="haccp-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="actions"):
            for bid, _ in HACCP_BUTTONS:
                yield Button("", id=bid, variant="primary" if bid == "probe" else "default")
        yield Static("", id="haccp-log", classes="note")

    def draw(self) -> None:
        state = self.state
        if state is None:
            return
        t = state.t
        self.query_one("#haccp-title", Static).update(t("haccp.due"))
        for bid, key in HACCP_BUTTONS:
            self.query_one(f"#{bid}", Button).label = t(key)
        snap = state.snapshot
        if snap is None:
            return
        note = self.query_one("#haccp-note", Static)
        table = self.query_one("#haccp-table", DataTable)
        if snap.checks is None:
            note.update(self.not_available(t, "HACCP"))
            table.display = False
            return
        note.update(VENUE_TIME.day(snap.haccp.start, t.locale) if snap.haccp else "")
        table.display = True
        labels = state.labels()
        now = snap.agent_now
        rows = []
        # In the day's order: a check done keeps its place, an overdue one is marked as such.
        for c in sorted(snap.checks, key=lambda c: (c.due_at is None, c.due_at or 0)):
            kind = check_state(c.done_at, c.due_at, now)
            if kind == "done":
                shown = Text(t("haccp.done_by", staff=f"{c.done_by or '?'} {_clock(c.done_at)}"))
            elif kind == "overdue":
                shown = Text(t("haccp.overdue"), style="bold reverse")
            else:
                shown = Text(t("haccp.not_done"))
            rows.append(
                (
                    c.id,
                    [
                        t(f"check.{c.kind}"),
                        c.label or labels.get(c.unit, c.unit),
                        "" if c.due_at is None else _clock(c.due_at),
                        shown,
                    ],
                )
            )
        cols = [t(f"haccp.col.{c}") for c in ("check", "unit", "due", "done")]
        _fill(table, cols, rows)

    def selected(self) -> HaccpCheck | None:
        table = self.query_one("#haccp-table", DataTable)
        snap = self.state.snapshot if self.state else None
        if not table.display or table.row_count == 0 or snap is None or snap.checks is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((c for c in snap.checks if c.id == key), None)

    def show_log(self, text: str) -> None:
        self.query_one("#haccp-log", Static).update(text)


def _clock(ts: float | None) -> str:
    return "" if ts is None else VENUE_TIME.hhmm(ts)
