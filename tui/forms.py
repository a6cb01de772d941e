"""Modal forms for the staff's intents: PIN confirmation, corrective action, manual probe entry.

Each returns a typed result (or None when cancelled); the app sends it through the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tui.i18n import Translator

DISPOSITIONS = ("kept", "moved", "discarded")


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


class _Form(ModalScreen[object]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, t: Translator, title: str) -> None:
        super().__init__(classes="form-screen")
        self.t = t
        self.title_text = title

    def staff_fields(self) -> ComposeResult:
        yield Label(self.t("form.staff"))
        yield Input(id="staff", placeholder="e.g. 12")
        yield Label(self.t("form.pin"))
        yield Input(id="pin", password=True, restrict=r"[0-9]*", max_length=8)

    def buttons(self) -> ComposeResult:
        yield Static("", id="form-error")
        with Horizontal(classes="form-buttons"):
            yield Button(self.t("form.ok"), id="ok", variant="success")
            yield Button(self.t("form.cancel"), id="cancel", variant="default")

    def staff(self) -> StaffPin | None:
        staff = self.query_one("#staff", Input).value.strip()
        pin = self.query_one("#pin", Input).value.strip()
        if not staff or not pin:
            self.error(self.t("form.required"))
            return None
        return StaffPin(staff, pin)

    def error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "ok":
            result = self.collect()
            if result is not None:
                self.dismiss(result)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        result = self.collect()
        if result is not None:
            self.dismiss(result)

    def collect(self) -> object | None:
        # Each form overrides this (Textual's metaclass rules out abc here).
        raise NotImplementedError(f"{type(self).__name__} must define collect()")


class PinForm(_Form):
    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Static(self.title_text, classes="form-title")
            yield from self.staff_fields()
            yield from self.buttons()

    def collect(self) -> StaffPin | None:
        return self.staff()


class CorrectiveActionForm(_Form):
    def compose(self) -> ComposeResult:
        t = self.t
        with Vertical(classes="form"):
            yield Static(self.title_text, classes="form-title")
            yield Label(t("form.what_done"))
            yield Input(id="action")
            yield Label(t("form.disposition"))
            yield Select(
                [(t(f"disposition.{d}"), d) for d in DISPOSITIONS],
                id="disposition",
                value="kept",
                allow_blank=False,
            )
            yield Label(t("form.verification"))
            yield Input(id="verification", placeholder="3.5")
            yield from self.staff_fields()
            yield from self.buttons()

    def collect(self) -> CorrectiveAction | None:
        action = self.query_one("#action", Input).value.strip()
        raw = self.query_one("#verification", Input).value
        reading = parse_number(raw) if raw.strip() else None
        if raw.strip() and reading is None:
            self.error(self.t("form.bad_number"))
            return None
        if not action:
            self.error(self.t("form.what_done"))
            return None
        staff = self.staff()
        if staff is None:
            return None
        disposition = self.query_one("#disposition", Select).value
        return CorrectiveAction(staff, action, str(disposition), reading)


class ProbeForm(_Form):
    def __init__(self, t: Translator, title: str, units: list[tuple[str, str]]) -> None:
        super().__init__(t, title)
        self.units = units

    def compose(self) -> ComposeResult:
        t = self.t
        with Vertical(classes="form"):
            yield Static(self.title_text, classes="form-title")
            yield Label(t("form.unit"))
            yield Select(
                self.units,
                id="unit",
                allow_blank=False,
                value=self.units[0][1] if self.units else Select.BLANK,
            )
            yield Label(t("form.value"))
            yield Input(id="value", placeholder="3.5")
            yield from self.staff_fields()
            yield from self.buttons()

    def collect(self) -> ProbeEntry | None:
        value = parse_number(self.query_one("#value", Input).value)
        if value is None:
            self.error(self.t("form.bad_number"))
            return None
        staff = self.staff()
        if staff is None:
            return None
        unit = self.query_one("#unit", Select).value
        if not isinstance(unit, str):
            return None
        return ProbeEntry(staff, unit, value)
