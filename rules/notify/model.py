"""The `[notify]` section of rules.toml: recipients (one Apprise URL list each), quiet hours,
a rate limit per recipient, and how delivery is retried."""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_profiles.schema import SLUG, SLUG_HINT

QUIET = r"([0-2]\d:[0-5]\d-[0-2]\d:[0-5]\d)?"


@dataclass(frozen=True, slots=True)
class Recipient:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    # Apprise URLs: mailto://, tgram://, slack://, msteams://, workflows://, ntfy://, twilio://,
    # json:// … They carry tokens and passwords: never logged.
    urls: tuple[str, ...] = field(metadata={"nonempty": True})
    name: str = ""
    quiet_hours: str | None = field(default=None, metadata={"pattern": QUIET})

    def __post_init__(self) -> None:
        for u in self.urls:
            if "://" not in u:
                raise ValueError(f"recipient {self.id!r}: {u.split(':')[0]!r}… is not a URL")


@dataclass(frozen=True, slots=True)
class Notify:
    recipients: tuple[Recipient, ...] = ()
    # Local time "HH:MM-HH:MM": notifications wait until it ends; critical alarms do not.
    quiet_hours: str = field(default="", metadata={"pattern": QUIET})
    max_per_hour: int = field(default=20, metadata={"min": 1, "max": 3600})
    retry_base_s: float = field(default=30.0, metadata={"min": 1, "max": 3600})
    retry_cap_s: float = field(default=1800.0, metadata={"min": 1, "max": 86400})
    give_up_after_s: float = field(default=86400.0, metadata={"min": 60, "max": 7 * 86400})
    tell_clear: bool = True
    tell_ack: bool = True

    def recipient(self, rid: str) -> Recipient | None:
        for r in self.recipients:
            if r.id == rid:
                return r
        return None
