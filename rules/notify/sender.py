"""Delivery through Apprise: one URL list per recipient (e-mail over SMTP, Telegram, Slack,
Teams, Discord, ntfy, SMS gateways, plain JSON webhooks). Apprise does the channels; this
module only turns its answer into (delivered, reason) without ever echoing a URL (URLs hold
tokens and passwords)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Sender = Callable[[Sequence[str], str, str], Awaitable[tuple[bool, str]]]

# Apprise logs each delivery at INFO with the service's host; keep the box's log to outcomes.
logging.getLogger("apprise").setLevel(logging.WARNING)


def _apprise() -> Any:
    # Apprise's e-mail plugin imports the stdlib's deprecated imghdr (gone in 3.13) for its
    # PGP support; the warning is the library's, raised once at import: keep it out of ours.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        import apprise
        import apprise.plugins.email

    return apprise


async def apprise_send(urls: Sequence[str], title: str, body: str) -> tuple[bool, str]:
    apprise = _apprise()
    ap = apprise.Apprise()
    for i, url in enumerate(urls):
        if not ap.add(url):
            return False, f"URL #{i + 1} is not one Apprise understands"
    result = await ap.async_notify(body=body, title=title)
    if bool(result):
        return True, ""
    return False, f"{len(urls)} URL(s): delivery failed ({getattr(result, 'status', 'failure')})"
