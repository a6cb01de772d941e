"""The systemd notification protocol (sd_notify(3)): datagrams of `KEY=VALUE` lines sent to the
socket named by $NOTIFY_SOCKET. A handful of lines, so no dependency: the common client library
swallows every error, and a box whose watchdog pings silently fail is restarted for nothing."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends state to systemd; does nothing when the agent was not started by systemd."""

    def __init__(self, address: str | None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # Linux abstract namespace
        self.address = address or None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        if self.address is None:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # OSError propagates: systemd not listening is worth a log line, not silence.
        self._sock.sendto("\n".join(fields).encode(), self.address)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog period systemd set for this process (WatchdogSec=), or None."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (a wrapper that exec'd us keeps its pid)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None
