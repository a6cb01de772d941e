"""Is the system clock synchronised? HACCP record times depend on it.

The kernel knows: adjtimex(2) with no modes is a read-only query that returns TIME_ERROR while
the clock is unsynchronised (STA_UNSYNC set, as it is from boot until an NTP client such as
systemd-timesyncd or chrony disciplines it). timedatectl's "System clock synchronized" is the
same bit, read the same way, so this works whichever NTP client the box runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import logging

log = logging.getLogger(__name__)

TIME_ERROR = 5


class ClockSync(enum.Enum):
    SYNCHRONISED = "synchronised"
    UNSYNCHRONISED = "unsynchronised"
    UNKNOWN = "unknown"


def classify(adjtimex_result: int) -> ClockSync:
    """adjtimex's return value: a clock state 0-5, or -1 when the call itself failed."""
    if adjtimex_result < 0:
        return ClockSync.UNKNOWN
    return ClockSync.UNSYNCHRONISED if adjtimex_result == TIME_ERROR else ClockSync.SYNCHRONISED


def clock_sync() -> ClockSync:
    name = ctypes.util.find_library("c")
    if name is None:
        return ClockSync.UNKNOWN
    libc = ctypes.CDLL(name, use_errno=True)
    # struct timex is 208 bytes on 64-bit Linux; modes (the first int) = 0 means "read only".
    buf = ctypes.create_string_buffer(512)
    return classify(int(libc.adjtimex(buf)))


def warn_if_unsynchronised() -> ClockSync:
    state = clock_sync()
    if state is ClockSync.UNSYNCHRONISED:
        log.warning(
            "the system clock is not synchronised: HACCP record times may be wrong "
            "(enable time sync: `timedatectl set-ntp true`, see docs/install.md)"
        )
    elif state is ClockSync.UNKNOWN:
        log.info("cannot tell whether the system clock is synchronised")
    return state
