"""The six views. Each draws itself from the app's last snapshot when shown or when new state
arrives; none calls the API (intents go up to the app as actions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Static

from tui.api_client import Alarm, HaccpCheck
from tui.guard import Guarded
from tui.model import (
    BATTERY_NAMES,
    ICONS,
    RSSI_NAMES,
    Status,
    UnitView,
    point_of_kind,
    sort_alarms,
    stock_items,
    summary_counts,
)
from tui.venue_time import VENUE_TIME
from tui.widgets import UnitTile

if TYPE_CHECKING:
    from tui.app import KitchenApp

TILE_WIDTH = 30
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


class View(Guarded, Vertical):
    """Base: `draw()` is called with the app when state or language changes."""

    @property
    def kitchen(self) -> KitchenApp:
        from tui.app import KitchenApp

        app = self.app
        assert isinstance(app, KitchenApp)
        return app

    def draw(self) -> None:
        # Each screen's view overrides this (Textual's metaclass rules out abc here).
        raise NotImplementedError(f"{type(self).__name__} must define draw()")

    def not_available(self, what: str) -> str:
        return self.kitchen.t("banner.not_available", what=what)


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


class OverviewView(View):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="tiles-scroll"):
            yield Grid(id="tiles")

    def on_resize(self) -> None:
        self.query_one("#tiles", Grid).styles.grid_size_columns = max(
            1, self.size.width // TILE_WIDTH
        )

    def draw(self) -> None:
        app = self.kitchen
        views = app.unit_views()
        grid = self.query_one("#tiles", Grid)
        tiles = {w.id: w for w in grid.query(UnitTile)}
        new: list[UnitTile] = []
        for v in views:
            tile = tiles.pop(f"tile-{v.device_id}", None)
            if tile is None:
                new.append(UnitTile(v, app.t, app.venue_unit))
            else:
                tile.show(v)
        for gone in tiles.values():
            gone.remove()
        if new:
            grid.mount_all(new)

    def retranslate(self) -> None:
        for tile in self.query(UnitTile):
            tile.refresh()


def summary_text(app: KitchenApp, views: Sequence[UnitView]) -> tuple[str, str]:
    counts = summary_counts(views)
    alarm, warning = counts[Status.ALARM], counts[Status.WARNING]
    offline = counts[Status.OFFLINE]
    if alarm or warning or offline:
        text = app.t("summary.problems", alarm=alarm, warning=warning, offline=offline)
        icon = ICONS[Status.ALARM if alarm else Status.WARNING]
        return f"{icon} {text}", "-alarm" if alarm else "-warning"
    return f"{ICONS[Status.OK]} {app.t('summary.all_ok', total=len(views))}", "-ok"


class DevicesView(View):
    def compose(self) -> ComposeResult:
        yield Table(id="devices-table", cursor_type="row", zebra_stripes=True)

    def draw(self) -> None:
        app = self.kitchen
        snap = app.snapshot
        if snap is None:
            return
        t = app.t
        now = snap.agent_now
        by_dev: dict[str, dict[str, Any]] = {}
        for r in snap.latest:
            by_dev.setdefault(r.device, {})[r.point] = r
        rows = []
        for d in snap.devices:
            points = by_dev.get(d.id, {})
            kinds: Mapping[str, str] = app.kinds.get(d.profile, {})
            battery = point_of_kind(points, kinds, "battery", BATTERY_NAMES)
            rssi = point_of_kind(points, kinds, "rssi", RSSI_NAMES)
            state = (
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
                        state,
                        t.age(seen) if d.last_seen is not None else t("age.never"),
                        "—" if battery is None else f"{battery.value} {battery.unit}".strip(),
                        "—" if rssi is None else f"{rssi.value} {rssi.unit}".strip(),
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
        app = self.kitchen
        snap = app.snapshot
        if snap is None:
            return
        t = app.t
        items = stock_items(snap.devices, snap.latest, app.kinds)
        self.query_one("#stock-note", Static).update("" if items else t("stock.none"))
        now = snap.agent_now
        rows = [
            (
                f"{s.device_id}/{s.point}",
                [
                    f"{s.label} · {s.point}",
                    f"{t.number(s.value)} {s.unit}",
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
        app = self.kitchen
        snap = app.snapshot
        if snap is None:
            return
        t = app.t
        sync = snap.sync
        table = self.query_one(DataTable)
        state = self.query_one("#sync-state", Static)
        if sync is None:
            state.update(self.not_available("sync"))
            self.query_one("#sync-last", Static).update("")
            table.display = False
            return
        table.display = True
        state.update(t("sync.online" if sync.online else "sync.offline"))
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

    def _rows(self, alarms: Sequence[Alarm]) -> Rows:
        app = self.kitchen
        t, snap = app.t, app.snapshot
        assert snap is not None
        labels = {d.id: d.label for d in snap.devices}
        labels.update({u.id: u.label for u in snap.units})
        now = snap.agent_now
        return [
            (
                a.id,
                [
                    t(f"severity.{a.severity}"),
                    labels.get(a.unit, "") or labels.get(a.device, a.device),
                    a.message or a.point,
                    t.age(None if now is None else now - a.raised_at),
                    t(f"alarm.state.{a.state}"),
                    " / ".join(dict.fromkeys(x for x in (a.acknowledged_by, a.action_by) if x)),
                ],
            )
            for a in alarms
        ]

    def draw(self) -> None:
        app = self.kitchen
        t = app.t
        self.query_one("#ack", Button).label = t("alarms.ack")
        self.query_one("#corrective", Button).label = t("alarms.action")
        self.query_one("#alarms-recent-title", Static).update(t("alarms.recent"))
        snap = app.snapshot
        if snap is None:
            return
        note = self.query_one("#alarms-note", Static)
        table = self.query_one("#alarms-table", DataTable)
        recent = self.query_one("#alarms-recent", DataTable)
        if snap.alarms is None:
            note.update(self.not_available("alarms"))
            for w in (table, recent, self.query_one(".actions")):
                w.display = False
            return
        for w in (table, recent, self.query_one(".actions")):
            w.display = True
        alarms = sort_alarms(snap.alarms)
        note.update("" if alarms else t("alarms.none"))
        cols = [t(f"alarms.col.{c}") for c in ALARM_COLUMNS]
        _fill(table, cols, self._rows(alarms))
        open_ids = {a.id for a in alarms}
        done = [a for a in snap.recent_alarms if a.id not in open_ids]
        _fill(recent, cols, self._rows(done))

    def selected(self) -> str | None:
        table = self.query_one("#alarms-table", DataTable)
        if not table.display or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)


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
        app = self.kitchen
        t = app.t
        self.query_one("#haccp-title", Static).update(t("haccp.due"))
        for bid, key in HACCP_BUTTONS:
            self.query_one(f"#{bid}", Button).label = t(key)
        snap = app.snapshot
        if snap is None:
            return
        note = self.query_one("#haccp-note", Static)
        table = self.query_one("#haccp-table", DataTable)
        if snap.checks is None:
            note.update(self.not_available("HACCP"))
            table.display = False
            return
        note.update(snap.haccp.day if snap.haccp else "")
        table.display = True
        labels = {d.id: d.label for d in snap.devices}
        labels.update({u.id: u.label for u in snap.units})
        rows = [
            (
                c.id,
                [
                    t(f"check.{c.kind}"),
                    c.label or labels.get(c.unit, c.unit),
                    "" if c.due_at is None else _clock(c.due_at),
                    t("haccp.done_by", staff=f"{c.done_by or '?'} {_clock(c.done_at)}")
                    if c.done_at
                    else t("haccp.not_done"),
                ],
            )
            for c in sorted(snap.checks, key=lambda c: (c.done_at is not None, c.due_at or 0))
        ]
        cols = [t(f"haccp.col.{c}") for c in ("check", "unit", "due", "done")]
        _fill(table, cols, rows)

    def selected(self) -> HaccpCheck | None:
        table = self.query_one("#haccp-table", DataTable)
        snap = self.kitchen.snapshot
        if not table.display or table.row_count == 0 or snap is None or snap.checks is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((c for c in snap.checks if c.id == key), None)

    def show_log(self, text: str) -> None:
        self.query_one("#haccp-log", Static).update(text)


def _clock(ts: float) -> str:
    return VENUE_TIME.hhmm(ts)
