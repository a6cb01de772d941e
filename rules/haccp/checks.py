"""Manual checks and what they are checked against: configurable items, computed results.

A check is a list of items, each answered pass/fail or with a value that is held against a
limit (the item's own, or the unit's for a probe reading). The check passes only if every item
does; `passed` is never taken from the person recording it. A failed check is an excursion: it
is complete only once a corrective action is recorded against it. Pure: specs and answers in,
an evaluated record body (or a `CheckError` saying what is wrong) out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from firmware_profiles.schema import SLUG, SLUG_HINT
from rules.errors import RulesError

ItemKind = Literal["pass_fail", "value"]


class CheckError(RulesError, ValueError):
    """A check that cannot be recorded as sent; the message tells staff what to fix."""


@dataclass(frozen=True, slots=True)
class CheckItem:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    label: str = ""
    kind: ItemKind = "pass_fail"
    # Limits for a value item (°C for temperatures); `unit_limit` holds it to the unit's own.
    min: float | None = None
    max: float | None = None
    unit_limit: bool = False

    def __post_init__(self) -> None:
        if self.kind == "pass_fail" and (
            self.min is not None or self.max is not None or self.unit_limit
        ):
            raise ValueError(f"item {self.id!r}: limits belong to kind = 'value' items")


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check staff record: when it is due, for which units, and its items."""

    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    label: str = ""
    due_by: str = field(default="23:00", metadata={"pattern": r"[0-2]\d:[0-5]\d"})
    per_unit: bool = True  # one per holding unit, or once for the venue
    every_days: int = field(default=1, metadata={"min": 1, "max": 366})
    items: tuple[CheckItem, ...] = ()

    @property
    def due_hours(self) -> float:
        h, m = self.due_by.split(":")
        return int(h) + int(m) / 60


# SFBB's daily opening and closing checks; a probe reading per unit held to the unit's limit;
# a weekly thermometer calibration in iced water (within 1 °C of 0 °C).
DEFAULT_CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "opening",
        "Opening checks",
        "10:00",
        True,
        1,
        (
            CheckItem("working", "Unit working and at temperature"),
            CheckItem("clean", "Unit and prep areas clean"),
            CheckItem("stock", "Food covered, labelled, in date"),
        ),
    ),
    CheckSpec(
        "probe",
        "Probe reading",
        "14:00",
        True,
        1,
        (CheckItem("value", "Probe temperature", "value", unit_limit=True),),
    ),
    CheckSpec(
        "closing",
        "Closing checks",
        "23:00",
        True,
        1,
        (
            CheckItem("no_food_out", "No food left out"),
            CheckItem("out_of_date", "Out-of-date food discarded"),
            CheckItem("clean", "Unit and prep areas clean"),
        ),
    ),
    CheckSpec(
        "calibration",
        "Thermometer calibration",
        "10:00",
        False,
        7,
        (CheckItem("value", "Reading in iced water", "value", min=-1.0, max=1.0),),
    ),
)

# Checks recorded on demand, never due: nothing is missed when they are not done.
AD_HOC = ("delivery", "line_clean", "review")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def evaluate(
    spec: CheckSpec,
    answers: dict[str, Any],
    unit_limits: tuple[float | None, float | None] = (None, None),
    all_passed: bool | None = None,
) -> dict[str, Any]:
    """The record body for a check: each item with its answer, limit and result; `passed`.

    `answers` maps item ids to a bool (pass/fail) or a number (value items). `all_passed`
    answers every pass/fail item at once (a terminal's "all OK" tick); value items always need
    their value.
    """
    unknown = sorted(set(answers) - {i.id for i in spec.items})
    if unknown:
        raise CheckError(
            f"{spec.id}: no item(s) {', '.join(unknown)} (items: "
            f"{', '.join(i.id for i in spec.items)})"
        )
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for item in spec.items:
        raw = answers.get(item.id)
        row: dict[str, Any] = {"item": item.id, "label": item.label or item.id}
        if item.kind == "pass_fail":
            if raw is None:
                raw = all_passed
            if not isinstance(raw, bool):
                missing.append(item.id)
                continue
            row["passed"] = raw
        else:
            v = _num(raw)
            if v is None:
                missing.append(item.id)
                continue
            lo, hi = unit_limits if item.unit_limit else (item.min, item.max)
            row["value"] = v
            if lo is not None:
                row["min"] = lo
            if hi is not None:
                row["max"] = hi
            row["passed"] = (lo is None or v >= lo) and (hi is None or v <= hi)
            if lo is None and hi is None:
                row["no_limit"] = True
        out.append(row)
    if missing:
        raise CheckError(f"{spec.id}: answer every item; missing {', '.join(missing)}")
    passed = all(r["passed"] for r in out)
    body: dict[str, Any] = {"items": out, "passed": passed}
    if not passed:
        body["needs_action"] = True
        body["failed"] = [r["item"] for r in out if not r["passed"]]
    values = [r for r in out if "value" in r]
    if len(values) == 1:  # the check's headline value (a probe or calibration reading)
        body["value"] = values[0]["value"]
        for k in ("min", "max"):
            if k in values[0]:
                body[f"limit_{k}"] = values[0][k]
    return body


def spec_for(specs: tuple[CheckSpec, ...], check: str) -> CheckSpec | None:
    for s in specs:
        if s.id == check:
            return s
    return None
