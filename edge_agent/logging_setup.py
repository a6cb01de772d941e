"""Logging: readable lines by default, one JSON object per line with --log-json.

Under systemd stderr is a journald stream ($JOURNAL_STREAM names it): lines then carry the
`<N>` syslog priority prefix journald understands (so `journalctl -p warning` filters) and no
timestamp of their own (journald stamps every line).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping

# syslog priorities, as sd-daemon(3) prefixes: <3> err, <4> warning, <6> info, <7> debug.
_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "task": getattr(record, "taskName", None),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelname, 6)}>"
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        # journald splits on newlines; each continuation line keeps the priority.
        return "\n".join(prefix + line for line in text.splitlines())


def stderr_is_journal(env: Mapping[str, str] | None = None, fd: int | None = None) -> bool:
    """True when stderr is the journald stream systemd connected (not a pipe it was replaced by)."""
    env = os.environ if env is None else env
    dev, _, ino = env.get("JOURNAL_STREAM", "").partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno() if fd is None else fd)
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    elif stderr_is_journal():
        handler.setFormatter(JournalFormatter())
    else:
        fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        fmt.converter = time.localtime
        handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pymodbus logs every failed transaction with a frame dump; our drivers log outages once.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    # Client libraries narrate every session at INFO; the agent reports what matters itself.
    for name in ("asyncua", "aiohttp.access", "bleak", "paho"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
