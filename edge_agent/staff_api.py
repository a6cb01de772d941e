"""The local API's one staff directory, and the PIN check every staff action goes through.

One directory per app, so wrong PINs count towards one lock-out whichever route they were tried
on (two directories would give a guesser twice the attempts)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from edge_agent.clock import Clock
from edge_agent.staff import EventSink, LockedOut, Staff, StaffDirectory, StaffRecord, WrongPin

STAFF_DIRECTORY = web.AppKey("staff_directory", StaffDirectory)


LOCKOUT_FILE = "staff-lockout.json"


def directory(
    app: web.Application,
    staff: Iterable[StaffRecord],
    clock: Clock,
    record: EventSink,
    store_path: str | None = None,
) -> StaffDirectory:
    """The one directory of the API (so one lock-out); with `store_path`, the lock-out is
    kept beside the store, private, and outlives a restart."""
    found = app.get(STAFF_DIRECTORY)
    if found is None:
        state = None
        if store_path is not None:
            state = os.path.join(os.path.dirname(os.path.abspath(store_path)), LOCKOUT_FILE)
        found = app[STAFF_DIRECTORY] = StaffDirectory(staff, clock, record, state_path=state)
    return found


async def signed(directory: StaffDirectory, body: Mapping[str, Any]) -> Staff:
    """The staff member `staff_id` + `pin` in `body` name; HTTP 400/401/429 otherwise."""
    staff_id = body.get("staff_id")
    if not isinstance(staff_id, str) or not staff_id.strip():
        raise web.HTTPBadRequest(text="'staff_id' is required (text)\n")
    pin = body.get("pin")
    if not isinstance(pin, str) or not pin:
        raise web.HTTPBadRequest(text="'pin' is required (text)\n")
    if not len(directory):
        raise web.HTTPUnauthorized(
            text="no staff are configured on this box: add [[staff]] to the venue config\n"
        )
    try:
        return await directory.authenticate(staff_id.strip(), pin)
    except LockedOut as exc:
        raise web.HTTPTooManyRequests(
            text=f"{exc}\n", headers={"Retry-After": str(max(1, round(exc.retry_after_s)))}
        ) from None
    except WrongPin as exc:
        raise web.HTTPUnauthorized(text=f"{exc}\n") from None
