"""Modal forms for the staff's intents: PIN confirmation, corrective action, manual probe entry.

Made for wet hands and a touch screen: staff pick their name from a list (typing the start of
their ID or name picks it too), a large on-screen keypad types PINs and values, the corrective
action is a set of common choices plus free text, nothing is preselected that staff must decide,
and every title names the unit. Each form returns a typed result (or None when cancelled); the
app sends it through the client.

Keys typed fast straight after opening a form land in it in order: the app waits for the form
to be mounted before it takes the next key, and Tab moves focus as a priority binding (handled
when the key is taken, not after the keys queued behind it were already sent to the old field)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Select, Static

from tui.api_client import StaffMember
from tui.guard import Guarded
from tui.i18n import Translator

DISPOSITIONS = ("kept", "moved", "discarded")
# The actions a kitchen takes most often after an excursion, offered as choices.
COMMON_ACTIONS = ("moved_stock", "discarded", "called_engineer", "adjusted_setpoint", "door_closed")
KEYPAD = ("7", "8", "9", "4", "5", "6", "1", "2", "3", ",", "0", "⌫")


@dataclass(frozen=True, slots=True)
class StaffPin:
    staff_id: str
    pin: str


@dataclass(frozen=True, slots=True)
class CorrectiveAction:
    staff: StaffPin
    action: str
    disposition: str
    verification_reading: float | None


@dataclass(frozen=True, slots=True)
class ProbeEntry:
    staff: StaffPin
    unit: str
    value: float


def parse_number(text: str) -> float | None:
    """Accepts the Italian decimal comma; None when it is not a finite number."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def match_staff(staff: Sequence[StaffMember], typed: str) -> StaffMember | None:
    """The member an ID or name typed so far points at: an exact ID, else a unique-enough
    prefix of an ID, else of a name (case-insensitive). None when nothing matches."""
    t = typed.strip().casefold()
    if not t:
        return None
    tests: tuple[Callable[[StaffMember], bool], ...] = (
        lambda m: m.id.casefold() == t,
        lambda m: m.id.casefold().startswith(t),
        lambda m: m.name.casefold().startswith(t),
    )
    return next((m for test in tests for m in staff if test(m)), None)


class StaffPicker(RadioSet):
    """Staff tap their name; typing the start of an ID or a name picks it from the keyboard."""

    def __init__(self, staff: Sequence[StaffMember], **kw: str) -> None:
        self.staff = tuple(staff)
        self.typed = ""
        super().__init__(
            *(RadioButton(f"{m.name} ({m.id})", id=f"staff-{i}") for i, m in enumerate(staff)),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def chosen(self) -> StaffMember | None:
        i = self.pressed_index
        return self.staff[i] if 0 <= i < len(self.staff) else None

    def on_key(self, event: events.Key) -> None:
        if event.character is None or not event.is_printable or event.character == " ":
            return
        event.stop()
        event.prevent_default()
        self.typed += event.character
        member = match_staff(self.staff, self.typed)
        if member is not None:
            button = self.query_one(f"#staff-{self.staff.index(member)}", RadioButton)
            button.value = True
            self._selected = self.staff.index(member)  # keep the highlight on the pick

    def on_blur(self) -> None:
        self.typed = ""


class Keypad(Grid):
    """A large numeric keypad that types into the form's last focused text field."""

    def compose(self) -> ComposeResult:
        for key in KEYPAD:
            b = Button(key, id=f"key-{'del' if key == '⌫' else 'comma' if key == ',' else key}")
            b.can_focus = False  # the keyboard's Tab order stays with the fields
            b.add_class("keypad-key")
            yield b


class _Form(Guarded, ModalScreen[object]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", show=False),
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
    ]

    def __init__(
        self, t: Translator, title: str, staff: Sequence[StaffMember] | None = None
    ) -> None:
        super().__init__(classes="form-screen")
        self.t = t
        self.title_text = title
        self.staff_list = tuple(staff) if staff else ()
        self._target: Input | None = None

    # ---- layout shared by every form ------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Static(self.title_text, id="form-title", classes="form-title")
            with Horizontal(classes="form-body"):
                with VerticalScroll(classes="form-fields"):
                    yield from self.fields()
                    yield from self.staff_field()
                with Vertical(classes="form-side"):
                    yield Label(self.t("form.pin"))
                    yield Input(
                        id="pin",
                        password=True,
                        restrict=r"[0-9]*",
                        max_length=12,
                        placeholder=self.t("form.pin_hint"),
                    )
                    yield Keypad(classes="keypad")
            yield Static("", id="form-error")
            with Horizontal(classes="form-buttons"):
                yield Button(self.t("form.ok"), id="ok", variant="success")
                yield Button(self.t("form.cancel"), id="cancel", variant="default")

    def fields(self) -> ComposeResult:
        # Each form overrides this (Textual's metaclass rules out abc here).
        raise NotImplementedError(f"{type(self).__name__} must define fields()")

    def staff_field(self) -> ComposeResult:
        t = self.t
        if self.staff_list:
            yield Label(t("form.who"))
            yield StaffPicker(self.staff_list, id="staff-pick", classes="staff-pick")
        else:  # an agent without the staff list: type the staff ID
            yield Label(t("form.staff"))
            yield Input(id="staff", placeholder=t("form.staff_hint"))

    def on_mount(self) -> None:
        first = next(iter(self.query("Input, Select, RadioSet").results(Widget)), None)
        if first is not None:
            # Now, not later (Widget.focus defers): the keys queued behind `p` must land here.
            self.set_focus(first)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, Input):
            self._target = event.widget

    def _keypad(self, key: str) -> None:
        target = self._target or next(iter(self.query(Input).results(Input)), None)
        if target is None:
            return
        if key == "⌫":
            target.value = target.value[:-1]
        elif key == "," and target.restrict is not None:
            return  # the PIN takes digits only
        else:
            target.insert_text_at_cursor(key)
        target.cursor_position = len(target.value)

    # ---- results --------------------------------------------------------------------------

    def staff(self) -> StaffPin | None:
        if self.staff_list:
            member = self.query_one("#staff-pick", StaffPicker).chosen
            staff_id = member.id if member else ""
        else:
            staff_id = self.query_one("#staff", Input).value.strip()
        pin = self.query_one("#pin", Input).value.strip()
        if not staff_id:
            self.error(self.t("form.pick_staff" if self.staff_list else "form.required"))
            return None
        if not pin:
            self.error(self.t("form.pin_required"))
            return None
        return StaffPin(staff_id, pin)

    def error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        bid = event.button.id or ""
        if bid == "cancel":
            self.dismiss(None)
        elif bid == "ok":
            self._submit()
        elif bid.startswith("key-"):
            self._keypad(str(event.button.label))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def _submit(self) -> None:
        if self.is_active:
            result = self.collect()
            if result is not None:
                self.dismiss(result)

    def collect(self) -> object | None:
        # Each form overrides this (Textual's metaclass rules out abc here).
        raise NotImplementedError(f"{type(self).__name__} must define collect()")


class PinForm(_Form):
    def fields(self) -> ComposeResult:
        return iter(())

    def collect(self) -> StaffPin | None:
        return self.staff()


class CorrectiveActionForm(_Form):
    def fields(self) -> ComposeResult:
        t = self.t
        yield Label(t("form.what_done"))
        with Vertical(id="actions", classes="choices"):
            for a in COMMON_ACTIONS:
                yield Checkbox(t(f"action.{a}"), id=f"act-{a}")
        yield Input(id="action", placeholder=t("form.other_action"))
        yield Label(t("form.disposition"))
        with RadioSet(id="disposition"):  # nothing preselected: staff must say
            for d in DISPOSITIONS:
                yield RadioButton(t(f"disposition.{d}"), id=f"disp-{d}")
        yield Label(t("form.verification"))
        yield Input(id="verification", placeholder=t("form.value_hint"))

    def action_text(self) -> str:
        chosen = [
            self.t(f"action.{a}")
            for a in COMMON_ACTIONS
            if self.query_one(f"#act-{a}", Checkbox).value
        ]
        free = self.query_one("#action", Input).value.strip()
        return "; ".join([*chosen, free] if free else chosen)

    def collect(self) -> CorrectiveAction | None:
        action = self.action_text()
        raw = self.query_one("#verification", Input).value
        reading = parse_number(raw) if raw.strip() else None
        if raw.strip() and reading is None:
            self.error(self.t("form.bad_number"))
            return None
        if not action:
            self.error(self.t("form.action_required"))
            return None
        pressed = self.query_one("#disposition", RadioSet).pressed_index
        if not 0 <= pressed < len(DISPOSITIONS):
            self.error(self.t("form.disposition_required"))
            return None
        staff = self.staff()
        if staff is None:
            return None
        return CorrectiveAction(staff, action, DISPOSITIONS[pressed], reading)


class ProbeForm(_Form):
    def __init__(
        self,
        t: Translator,
        title: str,
        units: list[tuple[str, str]],
        staff: Sequence[StaffMember] | None = None,
    ) -> None:
        super().__init__(t, title, staff)
        self.units = units
        self.base_title = title

    def fields(self) -> ComposeResult:
        t = self.t
        yield Label(t("form.unit"))
        yield Select(
            self.units,
            id="unit",
            allow_blank=not self.units,
            value=self.units[0][1] if self.units else Select.NULL,
        )
        yield Label(t("form.value"))
        yield Input(id="value", placeholder=t("form.value_hint"))

    def on_mount(self) -> None:
        super().on_mount()
        self._retitle()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._retitle()

    def _retitle(self) -> None:
        unit = self.query_one("#unit", Select).value
        label = next((lbl for lbl, uid in self.units if uid == unit), None)
        title = f"{self.base_title} · {label}" if label else self.base_title
        self.query_one("#form-title", Static).update(title)

    def collect(self) -> ProbeEntry | None:
        unit = self.query_one("#unit", Select).value
        if not isinstance(unit, str):
            self.error(self.t("form.pick_unit"))
            return None
        value = parse_number(self.query_one("#value", Input).value)
        if value is None:
            self.error(self.t("form.bad_number"))
            return None
        staff = self.staff()
        if staff is None:
            return None
        return ProbeEntry(staff, unit, value)
