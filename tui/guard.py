"""The kitchen terminal outlives its own bugs: an unexpected error is logged with its traceback,
shown to staff in one line, and the terminal stays up.

Textual ends the app on any exception that escapes a message handler, and the widget whose
handler raised stops processing messages. `Guarded` catches at the one place every event,
message, key binding and action of a node passes through (`_dispatch_message`), so the node keeps
running and the app never exits on a bug. Workers use `exit_on_error=False` and report through
`report` when they end in error."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App

log = logging.getLogger("tui")

LOG_NAME = "tui.log"


def report(app: App[Any], exc: BaseException, where: str) -> None:
    """Log the full traceback; show staff one line (the terminal is not a debugger)."""
    log.error("unexpected error in %s", where, exc_info=exc)
    text = getattr(app, "unexpected_text", None)
    line = text(exc) if callable(text) else f"Unexpected error: {type(exc).__name__}"
    try:
        app.notify(line, severity="error", timeout=8)
    except Exception:  # reporting must never raise in turn
        log.exception("could not show the error on screen")


class Guarded:
    """Mixin for the terminal's app, screens and views (put it first in the bases)."""

    async def _dispatch_message(self, message: Message) -> None:
        try:
            await super()._dispatch_message(message)  # type: ignore[misc]
        except Exception as exc:  # the terminal must stay up during service
            app = self.app  # type: ignore[attr-defined]
            report(app, exc, f"{type(self).__name__} handling {type(message).__name__}")


def log_path() -> str:
    """Where `run_tui` writes the log: $XDG_STATE_HOME/beerflow (0700), file 0600."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "beerflow", LOG_NAME)


def log_to_file(path: str) -> None:
    """The terminal owns the screen, so the log goes to a private file, never stderr."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
