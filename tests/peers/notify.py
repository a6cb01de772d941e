"""Real notification peers on loopback: an SMTP server (aiosmtpd, its own thread) and a JSON
webhook receiver (aiohttp) that can be told to fail its next N requests."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiohttp import web

from tests.peers.cloud import free_port


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)
    rcpt: list[list[str]] = field(default_factory=list)

    def url(self, to: str = "manager@venue.test") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=box@venue.test&to={to}"

    def text(self, i: int) -> str:
        parts = [p for p in self.messages[i].walk() if p.get_content_maintype() == "text"]
        return "".join(
            bytes(p.get_payload(decode=True) or b"").decode(p.get_content_charset() or "utf-8")
            for p in parts
        )

    def subjects(self) -> list[str]:
        from email.header import decode_header, make_header

        return [str(make_header(decode_header(str(m["Subject"])))) for m in self.messages]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.rcpt.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    # aiosmtpd logs each connection at INFO from its own thread, which can outlive the stream
    # a test's log capture gave it; its warnings and errors still show.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    box = Mailbox(free_port())
    ctl = Controller(box, hostname="127.0.0.1", port=box.port)
    ctl.start()
    try:
        yield box
    finally:
        ctl.stop()


@dataclass
class Hook:
    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    refused: int = 0

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def webhook() -> AsyncIterator[Hook]:
    hook = Hook(free_port())

    async def receive(request: web.Request) -> web.Response:
        if hook.fail_next > 0:
            hook.fail_next -= 1
            hook.refused += 1
            return web.Response(status=503)
        hook.received.append(json.loads(await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hook.port).start()
    try:
        yield hook
    finally:
        await runner.cleanup()
