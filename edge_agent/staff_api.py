"""The local API's one staff directory, and the PIN check every staff action goes through.

One directory per app, so wrong PINs count towards one lock-out whichever route they were tried
on (two directories would give a guesser twice the attempts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from edge_agent.clock import Clock
from edge_agent.staff import EventSink, LockedOut, Staff, StaffDirectory, StaffRecord, WrongPin

STAFF_DIRECTORY = web.AppKey("staff_directory", StaffDirectory)


def directory(
    app: web.Application, staff: Iterable[StaffRecord], clock: Clock, record: EventSink
) -> StaffDirectory:
    found = app.get(STAFF_DIRECTORY)
    if found is None:
        found = app[STAFF_DIRECTORY] = StaffDirectory(staff, clock, record)
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
