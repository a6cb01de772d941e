"""The kitchen terminal: a Textual app over the agent's local API.

State arrives as messages (`AgentSnapshot`, `AgentDown`, `HistoryLoaded`) from workers that call
`tui.api_client`; intent leaves as actions (acknowledge, corrective action, probe reading) that
go back through the same client. The agent stays the only writer."""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Static
from textual.worker import Worker, WorkerState

from tui.api_client import (
    AgentClient,
    AgentUnreachable,
    Alarm,
    ApiError,
    NotAvailable,
    Rejected,
    StaffMember,
)
from tui.forms import (
    CorrectiveAction,
    CorrectiveActionForm,
    PinForm,
    ProbeEntry,
    ProbeForm,
    StaffPin,
    _Form,
)
from tui.guard import Guarded, log_path, log_to_file, report
from tui.i18n import Locale, Translator
from tui.model import UnitView, temperature_point, unit_limits, unit_views
from tui.poller import AgentDown, AgentSnapshot, HistoryLoaded, Snapshot, backoff, fetch_snapshot
from tui.venue_time import VENUE_TIME
from tui.views import (
    AlarmsView,
    DevicesView,
    HaccpView,
    OverviewView,
    StockView,
    SyncView,
    View,
    ViewState,
    summary_text,
)
from tui.widgets import UnitTile

log = logging.getLogger("tui")

SCREENS = ("overview", "alarms", "haccp", "devices", "stock", "sync")
# The terminal's own key actions, switched off while a form is open (see check_action).
ACTIONS = frozenset(
    {"show", "language", "quit", "acknowledge", "corrective", "probe", "mark_done", "silence"}
)
HISTORY_WINDOW_S = 3 * 3600.0
LIVE_SAMPLES = 360


def load_kinds() -> dict[str, dict[str, str]]:
    """Point kinds per profile from the profile library on this box (best effort: the screen
    falls back to point names and units when a profile is unknown)."""
    try:
        from firmware_profiles.loader import load_library

        return {p.id: {pt.name: pt.kind for pt in p.points} for p in load_library()}
    except Exception:  # a broken library must not keep the kitchen screen dark
        return {}


class KitchenApp(Guarded, App[int]):
    CSS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.tcss")
    ENABLE_COMMAND_PALETTE = False  # a kitchen screen, not a developer's console
    TITLE = "BeerFlow"
    # Priority bindings: taken when the key is read, before the keys typed after it are handed
    # to a widget, so `p` opens the form that the next keys land in (see tui/forms.py).
    # check_action switches them off while a form is open.
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(i + 1), f"show('{n}')", n, show=False, priority=True)
            for i, n in enumerate(SCREENS)
        ),
        Binding("l", "language", "language", show=False, priority=True),
        Binding("q", "quit", "quit", show=False, priority=True),
        Binding("a", "acknowledge", "ack", show=False, priority=True),
        Binding("c", "corrective", "corrective", show=False, priority=True),
        Binding("p", "probe", "probe", show=False, priority=True),
        Binding("d", "mark_done", "done", show=False, priority=True),
        Binding("s", "silence", "silence", show=False, priority=True),
    ]

    def __init__(
        self,
        socket_path: str,
        locale: Locale = "en",
        unit: str = "C",
        *,
        kinds: Mapping[str, Mapping[str, str]] | None = None,
        poll_s: float = 2.0,
        history_s: float = 300.0,
        export_dir: str | None = None,
        bell_every_s: float = 5.0,
        silence_s: float = 300.0,
    ) -> None:
        super().__init__()
        self.client = AgentClient(socket_path)
        self.t = Translator(locale)
        self.venue_unit = "F" if unit.upper() == "F" else "C"
        self.kinds: Mapping[str, Mapping[str, str]] = kinds if kinds is not None else load_kinds()
        self.poll_s = poll_s
        self.history_s = history_s
        self.export_dir = export_dir or default_export_dir()
        # The alarm sound: rings while an alarm nobody has acknowledged is open, until a key
        # silences it for a while; a new alarm rings again at once.
        self.bell_every_s = bell_every_s
        self.silence_s = silence_s
        self.silenced_until = 0.0
        self.rings = 0
        self._ringing: frozenset[str] = frozenset()
        self.snapshot: Snapshot | None = None
        self.agent_down: str | None = None
        self.history: dict[str, deque[float]] = {}
        self._last_ts: dict[str, float] = {}
        self._views: list[UnitView] | None = None
        self._got_first = asyncio.Event()
        self.first_render_s: float | None = None
        self.last_outcome = ""
        self._started = time.perf_counter()

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self.t("summary.waiting"), id="summary")
        yield Static("", id="banner")
        yield Static("", id="outcome", classes="-hidden")
        with Horizontal(id="nav"):
            for i, name in enumerate(SCREENS):
                nav = Button(f"{i + 1} {self.t('nav.' + name)}", id=f"nav-{name}", classes="nav")
                nav.can_focus = False  # touch/click target; keys 1-6 do the same
                yield nav
        with ContentSwitcher(id="views", initial="overview"):
            yield OverviewView(id="overview")
            yield AlarmsView(id="alarms")
            yield HaccpView(id="haccp")
            yield DevicesView(id="devices")
            yield StockView(id="stock")
            yield SyncView(id="sync")
        yield Static("", id="keys")

    def on_mount(self) -> None:
        self.set_interval(self.bell_every_s, self._ring_if_needed, name="alarm-bell")
        self._label_chrome()
        self.main_screen.query_one("#nav-overview", Button).add_class("-current")
        self._poll()
        self._load_history()

    async def on_unmount(self) -> None:
        await self.client.close()

    def _label_chrome(self) -> None:
        t = self.t
        self.title = t("app.title")
        for i, name in enumerate(SCREENS):
            # On a small screen the names alone fit (the legend says which key is which).
            label = t("nav." + name) if self.compact else f"{i + 1} {t('nav.' + name)}"
            self.main_screen.query_one(f"#nav-{name}", Button).label = label
        # The nav buttons name the screens; the legend says the keys that are not on them.
        keys = [
            ("1-6", t("key.screens")),
            ("A", t("key.ack")),
            ("C", t("key.action")),
            ("P", t("key.probe")),
            ("D", t("key.done")),
            ("S", t("key.silence")),
            ("L", t("key.language")),
            ("Q", t("key.quit")),
        ]
        self.main_screen.query_one("#keys", Static).update(
            Text("  ".join(f"[{k}] {what}" for k, what in keys))
        )

    # ---- workers: state in ----------------------------------------------------------------

    # ---- the alarm sound ----------------------------------------------------------------------

    def _alarm_sound(self, snap: Snapshot) -> None:
        ringing = frozenset(a.id for a in (snap.alarms or ()) if a.state == "active")
        new = ringing - self._ringing
        self._ringing = ringing
        if new:
            self.silenced_until = 0.0  # a new alarm is heard even when the last was silenced
            self._ring()

    def _ring_if_needed(self) -> None:
        if self._ringing and time.monotonic() >= self.silenced_until:
            self._ring()

    def _ring(self) -> None:
        self.rings += 1
        self.bell()

    def action_silence(self) -> None:
        if not self._ringing:
            return
        self.silenced_until = time.monotonic() + self.silence_s
        self.notify(self.t("alarms.silenced", minutes=round(self.silence_s / 60)), timeout=6)

    # ---- robustness -------------------------------------------------------------------------

    def unexpected_text(self, exc: BaseException) -> str:
        return self.t("error.unexpected", error=type(exc).__name__)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            report(self, event.worker.error, f"worker {event.worker.name}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a form is open, the terminal's own keys (screens, quit, language) are off: a
        digit or a letter typed into a form must never act on the screen behind it."""
        return not (isinstance(self.screen, _Form) and action in ACTIONS)

    @work(group="agent", exclusive=False, exit_on_error=False)
    async def _poll(self) -> None:
        failures = 0
        while True:
            try:
                snap = await fetch_snapshot(self.client)
            except ApiError as exc:  # away, or a route answered nonsense: say so, keep trying
                if not failures:
                    log.warning("agent unreachable: %s", exc)  # once per outage
                self.post_message(AgentDown(down_reason(exc)))
                failures += 1
                await asyncio.sleep(backoff(failures))
                continue
            failures = 0
            self.post_message(AgentSnapshot(snap))
            await asyncio.sleep(self.poll_s)

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load_history(self) -> None:
        await self._got_first.wait()
        while True:
            snap = self.snapshot
            now = snap.agent_now if snap else None
            if snap is not None and now is not None:
                try:
                    for device, point in self._temp_points(snap).items():
                        pts = await self.client.history(device, point, now - HISTORY_WINDOW_S)
                        self.post_message(HistoryLoaded(device, [p.value for p in pts]))
                except NotAvailable:
                    return  # this agent has no history: sparklines grow from live readings
                except ApiError:
                    pass  # try again next round
            await asyncio.sleep(self.history_s)

    def _temp_points(self, snap: Snapshot) -> dict[str, str]:
        by_dev: dict[str, dict[str, Any]] = {}
        for r in snap.latest:
            by_dev.setdefault(r.device, {})[r.point] = r
        profiles = {d.id: d.profile for d in snap.devices}
        out = {}
        for dev, points in by_dev.items():
            tp = temperature_point(points, self.kinds.get(profiles.get(dev, ""), {}))
            if tp is not None:
                out[dev] = tp
        return out

    def on_agent_snapshot(self, message: AgentSnapshot) -> None:
        if not self._screen_ready():
            return
        snap = message.snapshot
        self.snapshot = snap
        VENUE_TIME.set_zone(snap.health.timezone)
        if self.agent_down is not None:
            self.agent_down = None
            self.notify(self.t("banner.reconnected"), timeout=4)
        self._record_live(snap)
        self._alarm_sound(snap)
        self._views = None
        self._redraw()
        if not self._got_first.is_set():
            self._got_first.set()
            self.call_after_refresh(self._mark_first_render)

    def _mark_first_render(self) -> None:
        self.first_render_s = time.perf_counter() - self._started

    def on_agent_down(self, message: AgentDown) -> None:
        if not self._screen_ready():
            return
        self.agent_down = message.error
        self._banner()

    @property
    def main_screen(self) -> Screen[Any]:
        """The terminal's own screen, also while a form is open on top of it."""
        return self.screen_stack[0]

    def _screen_ready(self) -> bool:
        """Messages can still arrive while the app shuts down and its widgets go away."""
        try:
            self.main_screen.query_one("#banner")
            self.main_screen.query_one("#summary")
            self.main_screen.query_one("#views")
        except (NoMatches, IndexError):
            return False
        return True

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        if not self._screen_ready():
            return
        buf = self.history.setdefault(message.device, deque(maxlen=LIVE_SAMPLES))
        buf.clear()
        buf.extend(message.values)
        self._views = None
        if self.current == "overview":
            self.main_screen.query_one(OverviewView).show(self.view_state())

    def _record_live(self, snap: Snapshot) -> None:
        for dev, point in self._temp_points(snap).items():
            r = next((x for x in snap.latest if x.device == dev and x.point == point), None)
            if r is None or not isinstance(r.value, int | float) or isinstance(r.value, bool):
                continue
            if r.ts > self._last_ts.get(dev, float("-inf")):
                self._last_ts[dev] = r.ts
                self.history.setdefault(dev, deque(maxlen=LIVE_SAMPLES)).append(float(r.value))

    # ---- drawing --------------------------------------------------------------------------

    @property
    def current(self) -> str:
        return self.main_screen.query_one(ContentSwitcher).current or "overview"

    def unit_views(self) -> list[UnitView]:
        if self._views is None:
            snap = self.snapshot
            if snap is None:
                return []
            self._views = unit_views(
                snap.devices,
                snap.latest,
                unit=self.venue_unit,
                kinds=self.kinds,
                history={k: list(v) for k, v in self.history.items()},
                alarms=snap.alarms or (),
                limits=unit_limits(snap.units),
            )
        return self._views

    @property
    def compact(self) -> bool:
        """A small kitchen screen (80×24 and the like): one-line chrome, small tiles."""
        return self.size.width < 100 or self.size.height < 32

    def view_state(self) -> ViewState:
        return ViewState(
            self.t,
            self.venue_unit,
            self.snapshot,
            self.kinds,
            self.unit_views(),
            self.compact,
        )

    def _redraw(self) -> None:
        self._banner()
        state = self.view_state()
        if self.snapshot is not None:
            text, cls = summary_text(state)
            summary = self.main_screen.query_one("#summary", Static)
            summary.update(text)
            summary.set_classes(cls)
        self.main_screen.query_one(f"#{self.current}", View).show(state)

    def on_resize(self, event: events.Resize) -> None:
        if not self._screen_ready():
            return
        self.main_screen.set_class(self.compact, "-compact")
        for tile in self.main_screen.query(UnitTile):
            tile.set_class(self.compact, "-compact")
        self._label_chrome()
        self._redraw()

    def _banner(self) -> None:
        banner = self.main_screen.query_one("#banner", Static)
        sync = self.snapshot.sync if self.snapshot else None
        if self.agent_down is not None:
            banner.update(self.t("banner.reconnecting", reason=self.t(self.agent_down)))
            banner.set_classes("-reconnecting")
        elif sync is not None and not sync.online:
            banner.update(
                self.t(
                    "banner.offline",
                    backlog=sync.backlog_total,
                    age=self.t.age(sync.oldest_unsent_age_s),
                )
            )
            banner.set_classes("-offline")
        else:
            banner.update("")
            banner.set_classes("-hidden")

    # ---- actions: intent out --------------------------------------------------------------

    def action_show(self, name: str) -> None:
        if name not in SCREENS:
            return
        self.main_screen.query_one(ContentSwitcher).current = name
        for n in SCREENS:
            self.main_screen.query_one(f"#nav-{n}", Button).set_class(n == name, "-current")
        self.main_screen.query_one(f"#{name}", View).show(self.view_state())

    def action_language(self) -> None:
        self.t.toggle()
        self._label_chrome()
        self.main_screen.query_one(OverviewView).retranslate()
        self._redraw()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid.startswith("nav-"):
            self.action_show(bid.removeprefix("nav-"))
        elif bid == "ack":
            await self.action_acknowledge()
        elif bid == "corrective":
            await self.action_corrective()
        elif bid == "probe":
            await self.action_probe()
        elif bid == "mark-done":
            await self.action_mark_done()
        elif bid == "log":
            self._show_log()
        elif bid == "export":
            self._export()

    def _selected_alarm(self) -> Alarm | None:
        if self.current != "alarms":
            self.action_show("alarms")
        alarm_id = self.main_screen.query_one(AlarmsView).selected()
        snap = self.snapshot
        alarms = (snap.alarms or ()) if snap is not None else ()
        alarm = next((a for a in alarms if a.id == alarm_id), None)
        if alarm is None:
            self.notify(self.t("alarms.select"), severity="warning")
        return alarm

    def unit_label(self, unit: str, device: str = "") -> str:
        snap = self.snapshot
        if snap is None:
            return unit or device
        labels = {d.id: d.label for d in snap.devices}
        labels.update({u.id: u.label for u in snap.units})
        return labels.get(unit, "") or labels.get(device, "") or unit or device

    def staff_list(self) -> tuple[StaffMember, ...] | None:
        return self.snapshot.staff if self.snapshot else None

    async def _open(self, form: _Form, done: Any) -> None:
        """Open a form and wait until it is mounted, so the keys typed next land in it."""
        if isinstance(self.screen, _Form):
            return
        await self.push_screen(form, done)

    async def action_acknowledge(self) -> None:
        alarm = self._selected_alarm()
        if alarm is None:
            return
        label = self.unit_label(alarm.unit, alarm.device)

        def done(result: object) -> None:
            if isinstance(result, StaffPin):
                self._send_ack(alarm.id, label, result)

        title = f"{self.t('alarms.ack')} · {label}"
        await self._open(PinForm(self.t, title, self.staff_list()), done)

    async def action_corrective(self) -> None:
        alarm = self._selected_alarm()
        if alarm is None:
            return
        label = self.unit_label(alarm.unit, alarm.device)

        def done(result: object) -> None:
            if isinstance(result, CorrectiveAction):
                self._send_corrective(alarm.id, label, result)

        title = f"{self.t('alarms.action')} · {label}"
        await self._open(CorrectiveActionForm(self.t, title, self.staff_list()), done)

    def _probe_units(self, first: str | None = None) -> list[tuple[str, str]]:
        """(label, id) of the HACCP units (what a probe reading is recorded against); the
        monitored devices when the venue has no HACCP units."""
        snap = self.snapshot
        units = [(u.label, u.id) for u in snap.units] if snap and snap.units else []
        units = units or [(v.label, v.device_id) for v in self.unit_views()]
        return sorted(units, key=lambda u: u[1] != first)

    async def action_probe(self, unit: str | None = None) -> None:
        units = self._probe_units(unit)
        if not units:
            # Nothing to record against yet (no data from the agent so far, or it is away).
            self.notify(self.t("haccp.no_units"), severity="warning")
            return

        def done(result: object) -> None:
            if isinstance(result, ProbeEntry):
                self._send_probe(result)

        form = ProbeForm(self.t, self.t("haccp.probe"), units, self.staff_list())
        await self._open(form, done)

    async def action_mark_done(self) -> None:
        if self.current != "haccp":
            self.action_show("haccp")
        check = self.main_screen.query_one(HaccpView).selected()
        if check is None:
            self.notify(self.t("haccp.select"), severity="warning")
            return
        if check.kind == "probe":
            await self.action_probe(check.unit)  # a probe check is done by entering the reading
            return
        label = check.label or self.unit_label(check.unit)

        def done(result: object) -> None:
            if isinstance(result, StaffPin):
                self._send_check(check.unit, check.kind, label, result)

        title = f"{self.t('check.' + check.kind)} · {label}"
        await self._open(PinForm(self.t, title, self.staff_list()), done)

    def _to_c(self, value: float | None) -> float | None:
        if value is None or self.venue_unit != "F":
            return value
        return round((value - 32) * 5 / 9, 2)

    def _outcome(self, text: str, cls: str) -> None:
        self.last_outcome = text
        outcome = self.main_screen.query_one("#outcome", Static)
        outcome.update(text)
        outcome.set_classes(cls)

    async def _intent(self, call: Any, ok_text: str) -> bool:
        try:
            await call
        except NotAvailable as exc:
            self.notify(self.t("banner.not_available", what=exc.route), severity="warning")
        except Rejected as exc:
            # 401 says nothing about which half was wrong (nor whose ID it is).
            if exc.status == 401:
                text = self.t("error.wrong_pin")
            elif exc.status == 429:
                text = self.t("error.locked_out")
            else:
                text = self.t("error.rejected", reason=exc.reason)
            self._outcome(f"✖ {text}", "-refused")
            self.notify(text, severity="error")
        except AgentUnreachable as exc:
            self.notify(self.t("banner.reconnecting", error=str(exc)[:60]), severity="error")
        else:
            self._outcome(f"✔ {ok_text}", "-done")
            self.notify(ok_text)
            self._poll_once()  # show the new state now, not at the next poll
            return True
        return False

    @work(group="refresh", exclusive=True, exit_on_error=False)
    async def _poll_once(self) -> None:
        try:
            snap = await fetch_snapshot(self.client)
        except ApiError:
            return  # the polling worker reports the agent's state
        self.post_message(AgentSnapshot(snap))

    @work(group="intent", exit_on_error=False)
    async def _send_ack(self, alarm: str, label: str, staff: StaffPin) -> None:
        await self._intent(
            self.client.acknowledge(alarm, staff.staff_id, staff.pin),
            self.t("alarms.acked", unit=label, staff=self.staff_name(staff.staff_id)),
        )

    def staff_name(self, staff_id: str) -> str:
        """Outcome lines name the person (the ID alone means nothing to the next shift)."""
        member = next((m for m in self.staff_list() or () if m.id == staff_id), None)
        return member.name if member else staff_id

    @work(group="intent", exit_on_error=False)
    async def _send_corrective(self, alarm: str, label: str, form: CorrectiveAction) -> None:
        await self._intent(
            self.client.corrective_action(
                alarm,
                form.staff.staff_id,
                form.staff.pin,
                form.action,
                form.disposition,
                self._to_c(form.verification_reading),
            ),
            self.t("alarms.action_saved", unit=label, staff=self.staff_name(form.staff.staff_id)),
        )

    @work(group="intent", exit_on_error=False)
    async def _send_check(self, unit: str, kind: str, label: str, staff: StaffPin) -> None:
        await self._intent(
            self.client.record_check(unit, kind, staff.staff_id, staff.pin, passed=True),
            self.t(
                "haccp.check_saved",
                check=self.t("check." + kind),
                unit=label,
                staff=self.staff_name(staff.staff_id),
            ),
        )

    @work(group="intent", exit_on_error=False)
    async def _send_probe(self, entry: ProbeEntry) -> None:
        value_c = self._to_c(entry.value)
        assert value_c is not None
        shown = f"{self.t.number(entry.value)} {'°F' if self.venue_unit == 'F' else '°C'}"
        await self._intent(
            self.client.record_probe_reading(
                entry.unit, value_c, entry.staff.staff_id, entry.staff.pin
            ),
            self.t(
                "haccp.probe_saved",
                value=shown,
                unit=self.unit_label(entry.unit),
                staff=self.staff_name(entry.staff.staff_id),
            ),
        )

    def _day(self) -> tuple[str, float, float]:
        """Today in the venue's time zone, as the agent counts it (from the checks due)."""
        snap = self.snapshot
        if snap is not None and snap.haccp is not None and snap.haccp.end > snap.haccp.start:
            return snap.haccp.day, snap.haccp.start, snap.haccp.end
        now = (snap.agent_now if snap else None) or time.time()
        start = now - now % 86400
        return time.strftime("%Y-%m-%d", time.gmtime(now)), start, start + 86400

    def _log_units(self) -> list[tuple[str, str]]:
        """(id, label) of the units with a HACCP log."""
        snap = self.snapshot
        if snap is not None and snap.units:
            return [(u.id, u.label) for u in snap.units]
        return [(v.device_id, v.label) for v in self.unit_views()]

    def _log_unit(self) -> tuple[str, str] | None:
        units = self._log_units()
        check = self.main_screen.query_one(HaccpView).selected()
        if check is not None:
            chosen = next((u for u in units if u[0] == check.unit), None)
            if chosen is not None:
                return chosen
        return units[0] if units else None

    @work(group="intent", exit_on_error=False)
    async def _show_log(self) -> None:
        unit = self._log_unit()
        if unit is None:
            return
        _, start, end = self._day()
        try:
            day_log = await self.client.haccp_log(unit[0], start, end)
            chain = await self.client.verify_chain()
        except NotAvailable:
            text = self.t("banner.not_available", what="HACCP")
            self.main_screen.query_one(HaccpView).show_log(text)
            return
        except ApiError as exc:
            self.notify(str(exc), severity="error")
            return
        t = self.t
        lines = [t("haccp.log_title", unit=unit[1])]
        lines += [
            f"{_hhmm(e.ts)}  {e.kind:<17} "
            f"{'' if e.value is None else self._temp(e.value):>8}  {e.staff or ''}  {e.note}"
            for e in day_log.entries
        ]
        gaps = ", ".join(f"{_hhmm(a)}–{_hhmm(b)}" for a, b in day_log.gaps)
        lines.append(t("haccp.gaps", gaps=gaps) if gaps else t("haccp.no_gaps"))
        lines.append(
            t("haccp.chain_ok", n=chain.records)
            if chain.ok
            else t("haccp.chain_broken", reason=chain.reason or "?")
        )
        self.main_screen.query_one(HaccpView).show_log("\n".join(lines))

    def _temp(self, value_c: float) -> str:
        v = value_c * 9 / 5 + 32 if self.venue_unit == "F" else value_c
        return f"{self.t.number(v)} {'°F' if self.venue_unit == 'F' else '°C'}"

    @work(group="intent", exit_on_error=False)
    async def _export(self) -> None:
        units = self._log_units()
        if self.agent_down is not None or self.snapshot is None or not units:
            # Never a file that looks like a report and holds nothing.
            self.notify(self.t("haccp.export_unavailable"), severity="error")
            return
        day, start, end = self._day()
        rows: list[tuple[float, list[Any]]] = []
        try:
            for unit, label in units:
                day_log = await self.client.haccp_log(unit, start, end)
                rows += [
                    (e.ts, [VENUE_TIME.iso(e.ts), label, e.kind, e.value, e.staff, e.note])
                    for e in day_log.entries
                ]
                rows += [
                    (a, [VENUE_TIME.iso(a), label, "gap", "", "", VENUE_TIME.iso(b)])
                    for a, b in day_log.gaps
                ]
        except NotAvailable:
            self.notify(self.t("banner.not_available", what="HACCP"), severity="warning")
            return
        except ApiError as exc:
            log.warning("HACCP export failed: %s", exc)
            self.notify(self.t("haccp.export_unavailable"), severity="error")
            return
        path = os.path.join(self.export_dir, f"haccp-{day}.csv")
        ordered = [r for _, r in sorted(rows, key=lambda r: r[0])]
        try:
            await asyncio.to_thread(_write_csv, path, ordered)
        except OSError as exc:
            log.warning("HACCP export to %s failed: %s", path, exc)
            self.notify(self.t("haccp.export_failed", path=path), severity="error")
            return
        self.notify(self.t("haccp.exported", path=path), timeout=10)


def default_export_dir() -> str:
    """Exports go to one known, private folder, not wherever the terminal was started."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "beerflow", "exports")


def down_reason(exc: ApiError) -> str:
    """Why the agent is away, as an i18n key: staff get a sentence, the log the details."""
    if not isinstance(exc, AgentUnreachable):
        return "agent.bad_answer"
    text = str(exc)
    cause = exc.__cause__
    os_error = getattr(cause, "os_error", cause)
    if isinstance(os_error, FileNotFoundError) or "No such file" in text:
        return "agent.no_socket"
    if isinstance(os_error, TimeoutError) or isinstance(cause, TimeoutError):
        return "agent.timeout"
    return "agent.refused"


def _hhmm(ts: float) -> str:
    return VENUE_TIME.hhmm(ts)


def _write_csv(path: str, rows: list[list[Any]]) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["time", "unit", "kind", "value", "staff", "note"])
        out.writerows(rows)


def run_tui(socket_path: str, locale: str, unit: str) -> int:
    """Entry point for `beerflow-edge tui`."""
    loc: Locale = "it" if locale == "it" else "en"
    app = KitchenApp(socket_path, loc, unit)
    log_to_file(log_path())
    rc = app.run()
    return rc or 0
