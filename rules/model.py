"""The rule file format: frozen dataclasses decoded from TOML with file:line: field errors.

Triggers are one flat dataclass with a `type` tag whose `__post_init__` checks that the fields
its type needs are present (a located error otherwise); actions are a tagged union
(rules/actions.py).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Literal

from edge_agent.errors import ValidationError
from edge_agent.typed_toml import INVALID, Decoder, parse_toml, read_text
from firmware_profiles.schema import SLUG, SLUG_HINT
from rules.actions import Action, AlarmAction, ClearAlarmAction
from rules.haccp.checks import DEFAULT_CHECKS, CheckSpec
from rules.notify.model import Notify

TriggerType = Literal["threshold", "rate", "state", "no_data", "schedule", "event"]
Priority = Literal["low", "normal", "high", "critical"]
UnitKind = Literal["cold_hold", "freezer", "hot_hold", "cellar", "cooling", "reheat", "line_clean"]

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Trigger:
    type: TriggerType
    device: str = ""
    point: str = ""
    above: float | None = None
    below: float | None = None
    # Hysteresis: an active alarm clears only once the value is back past this limit.
    clear: float | None = None
    for_s: float = field(default=0.0, metadata={"min": 0, "max": 7 * 86400})
    # rate: degrees (or units) per minute over window_s
    per_minute: float | None = None
    window_s: float = field(default=600.0, metadata={"min": 10, "max": 86400})
    equals: str | None = None
    minutes: float | None = field(default=None, metadata={"min": 0.1, "max": 7 * 1440})
    cron: str | None = None
    kind: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        t = self.type
        if t in ("threshold", "rate", "state") and not (self.device and self.point):
            raise ValueError(f"a {t} trigger needs 'device' and 'point'")
        if t == "threshold":
            if (self.above is None) == (self.below is None):
                raise ValueError("a threshold trigger needs exactly one of 'above' or 'below'")
            if self.clear is not None:
                if self.above is not None and self.clear > self.above:
                    raise ValueError("'clear' must not be above 'above' (hysteresis)")
                if self.below is not None and self.clear < self.below:
                    raise ValueError("'clear' must not be below 'below' (hysteresis)")
        if t == "rate" and self.per_minute is None:
            raise ValueError("a rate trigger needs 'per_minute' (negative for a fall)")
        if t == "state" and self.equals is None:
            raise ValueError("a state trigger needs 'equals'")
        if t == "no_data" and (not self.device or self.minutes is None):
            raise ValueError("a no_data trigger needs 'device' and 'minutes'")
        if t == "schedule":
            if not self.cron:
                raise ValueError("a schedule trigger needs 'cron' (5 fields)")
            _check_cron(self.cron)
        if t == "event" and not self.kind:
            raise ValueError("an event trigger needs 'kind'")

    @property
    def limit(self) -> float:
        return self.above if self.above is not None else float(self.below or 0.0)

    @property
    def clear_limit(self) -> float:
        return self.clear if self.clear is not None else self.limit


@dataclass(frozen=True, slots=True)
class Condition:
    type: Literal["time_window", "point"]
    start: str = field(default="00:00", metadata={"pattern": r"[0-2]\d:[0-5]\d"})
    end: str = field(default="24:00", metadata={"pattern": r"[0-2]\d:[0-5]\d"})
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ()
    device: str = ""
    point: str = ""
    equals: str | None = None
    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:
        if self.type == "point":
            if not (self.device and self.point):
                raise ValueError("a point condition needs 'device' and 'point'")
            if self.equals is None and self.above is None and self.below is None:
                raise ValueError("a point condition needs 'equals', 'above' or 'below'")


@dataclass(frozen=True, slots=True)
class Suppression:
    """Hold an alarm back while `point` is true (defrost, door open) or after power-up.

    The window of one episode runs from its start until it ends plus `recovery_s`, and never
    longer than `cap_s` from its start: a stuck defrost or a door left open still alarms.
    """

    when: Literal["defrost", "door", "power_up"]
    cap_s: float = field(metadata={"min": 0, "max": 86400})
    device: str = ""
    point: str = ""
    recovery_s: float = field(default=0.0, metadata={"min": 0, "max": 86400})

    def __post_init__(self) -> None:
        if self.when != "power_up" and not self.point:
            raise ValueError(f"a {self.when} suppression needs the 'point' that reports it")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    trigger: Trigger
    actions: tuple[Action, ...] = field(metadata={"nonempty": True})
    description: str = ""
    enabled: bool = True
    priority: Priority = "normal"
    cooldown_s: float = field(default=0.0, metadata={"min": 0, "max": 86400})
    conditions: tuple[Condition, ...] = ()
    suppress: tuple[Suppression, ...] = ()
    # HACCP unit this rule watches (excursions are recorded against it)
    unit: str = ""

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]

    @property
    def raises_alarm(self) -> bool:
        return any(isinstance(a, AlarmAction) for a in self.actions)


@dataclass(frozen=True, slots=True)
class EscalationStep:
    after_s: float = field(metadata={"min": 0, "max": 7 * 86400})
    action: Literal["notify_ui", "buzzer", "notify_manager"]
    # Recipients ([[notify.recipients]] ids) told off the box at this step. A notify_manager
    # step with none listed tells every recipient.
    notify: tuple[str, ...] = ()


DEFAULT_LADDER = (
    EscalationStep(0.0, "notify_ui"),
    EscalationStep(600.0, "buzzer"),
    EscalationStep(1800.0, "notify_manager"),
)


@dataclass(frozen=True, slots=True)
class Escalation:
    steps: tuple[EscalationStep, ...] = DEFAULT_LADDER
    buzzer_device: str = ""
    buzzer_command: str = "buzzer_on"

    def __post_init__(self) -> None:
        if list(self.steps) != sorted(self.steps, key=lambda s: s.after_s):
            raise ValueError("escalation steps must be in order of after_s")


@dataclass(frozen=True, slots=True)
class Unit:
    """A monitored HACCP unit: a fridge, a freezer, a hot cabinet, the cellar, a probe."""

    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    kind: UnitKind
    device: str = field(metadata={"nonempty": True})
    point: str = "room_temp"
    label: str = ""
    # Overrides of the region preset (°C, seconds)
    max_c: float | None = None
    min_c: float | None = None
    delay_s: float | None = field(default=None, metadata={"min": 0, "max": 86400})
    record_every_s: float = field(default=900.0, metadata={"min": 60, "max": 86400})
    defrost_point: str = ""
    door_point: str = ""
    power_up_s: float = field(default=5400.0, metadata={"min": 0, "max": 86400})


@dataclass(frozen=True, slots=True)
class Haccp:
    region: Literal["uk", "us", ""] = ""
    units: tuple[Unit, ...] = ()
    # The manual checks staff record; none configured means the defaults (rules.haccp.checks).
    checks: tuple[CheckSpec, ...] = ()
    # How often a manager signs the records off: each day, or each week (Monday to Sunday).
    signoff_every: Literal["day", "week"] = "week"

    @property
    def check_specs(self) -> tuple[CheckSpec, ...]:
        return self.checks or DEFAULT_CHECKS

    @property
    def signoff_days(self) -> int:
        return 1 if self.signoff_every == "day" else 7


@dataclass(frozen=True, slots=True)
class RuleFile:
    rules: tuple[Rule, ...] = ()
    escalation: Escalation = Escalation()
    haccp: Haccp = Haccp()
    notify: Notify = field(default_factory=Notify)
    source: str = ""

    def step_recipients(self, level: int) -> tuple[str, ...]:
        step = self.escalation.steps[level]
        if step.notify:
            return step.notify
        if step.action == "notify_manager":
            return tuple(r.id for r in self.notify.recipients)
        return ()


def _check_cron(expr: str) -> None:
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    if len(expr.split()) != 5:
        raise ValueError(f"cron {expr!r} must have 5 fields (minute hour day month weekday)")
    try:
        CronTrigger.from_crontab(expr, timezone=dt.UTC)
    except ValueError as exc:
        raise ValueError(f"cron {expr!r}: {exc}") from exc


def load_rules(file: str, region: str = "uk") -> RuleFile:
    return load_rules_text(read_text(file), file, region)


def load_rules_text(text: str, file: str, region: str = "uk") -> RuleFile:
    data, lines = parse_toml(text, file)
    dec = Decoder(file, lines)
    rf = dec.decode_dataclass(RuleFile, {k: v for k, v in data.items() if k != "source"}, ())
    if rf is not INVALID:
        _cross_check(rf, dec)
    if dec.issues:
        raise ValidationError(dec.issues)
    from rules.haccp.presets import expand_units

    eff_region = rf.haccp.region or region
    generated = expand_units(rf.haccp.units, eff_region)
    return RuleFile(rf.rules + generated, rf.escalation, rf.haccp, rf.notify, os.path.abspath(file))


def _cross_check(rf: RuleFile, dec: Decoder) -> None:
    seen: dict[str, int] = {}
    for i, r in enumerate(rf.rules):
        if r.id in seen:
            dec.error(
                ("rules", i, "id"), f"duplicate rule id {r.id!r} (first at rules[{seen[r.id]}])"
            )
        seen.setdefault(r.id, i)
    unit_ids: set[str] = set()
    for i, u in enumerate(rf.haccp.units):
        if u.id in unit_ids:
            dec.error(("haccp", "units", i, "id"), f"duplicate unit id {u.id!r}")
        unit_ids.add(u.id)
    recipients = {r.id for r in rf.notify.recipients}
    if len(recipients) != len(rf.notify.recipients):
        dec.error(("notify", "recipients"), "recipient ids must be unique")
    for i, step in enumerate(rf.escalation.steps):
        for j, rid in enumerate(step.notify):
            if rid not in recipients:
                dec.error(
                    ("escalation", "steps", i, "notify", j),
                    f"no recipient {rid!r} in [[notify.recipients]]",
                )
    check_ids: set[str] = set()
    for i, c in enumerate(rf.haccp.checks):
        if c.id in check_ids:
            dec.error(("haccp", "checks", i, "id"), f"duplicate check id {c.id!r}")
        check_ids.add(c.id)
        item_ids = [it.id for it in c.items]
        if len(set(item_ids)) != len(item_ids):
            dec.error(("haccp", "checks", i, "items"), f"check {c.id!r} repeats an item id")
        if not c.items:
            dec.error(("haccp", "checks", i, "items"), f"check {c.id!r} needs at least one item")
    for i, r in enumerate(rf.rules):
        for j, a in enumerate(r.actions):
            if isinstance(a, ClearAlarmAction) and a.alarm not in seen:
                dec.error(("rules", i, "actions", j, "alarm"), f"no rule {a.alarm!r} in this file")


def venue_rules_path(config_source: str) -> str:
    """Where a venue's rules live: rules.toml next to the venue config."""
    return os.path.join(os.path.dirname(os.path.abspath(config_source)), "rules.toml")
