"""What a rule does when it fires: one dataclass per action type, told apart by `type`.

`Action` is a tagged union: the rule file's `type = "..."` picks the dataclass (the TOML
decoder does this), each carries only the fields its type uses, and the rules service
handles them with one `match`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmAction:
    """Raise this rule's alarm (one uncleared alarm per rule); it clears with the trigger."""

    type: Literal["alarm"] = "alarm"
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearAlarmAction:
    """Clear another rule's alarm."""

    alarm: str = field(metadata={"nonempty": True})  # the rule id whose alarm to clear
    type: Literal["clear_alarm"] = "clear_alarm"


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandAction:
    """Send a command to a device's driver (at least once, expiring after a minute)."""

    device: str = field(metadata={"nonempty": True})
    command: str = field(metadata={"nonempty": True})
    args: dict[str, float] = field(default_factory=dict)
    type: Literal["command"] = "command"


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyAction:
    type: Literal["notify"] = "notify"
    message: str = ""
    to: Literal["ui", "manager", "cloud"] = "ui"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAction:
    """Put an event on record (kind defaults to rule.record)."""

    type: Literal["record"] = "record"
    kind: str = ""
    message: str = ""


Action = AlarmAction | ClearAlarmAction | CommandAction | NotifyAction | RecordAction
