"""The real cloud in a background thread with its own event loop, for synchronous clients
(schemathesis, requests): the same app and store the async tests use, over loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from cloud_sync import crypto
from cloud_sync.identity import BoxIdentity, new_identity
from cloud_sync.signing import canonical, request_message
from tests.peers.cloud import ADMIN, TENANT, VENUE, CloudServer, start_cloud


@dataclass
class ThreadedCloud:
    cloud: CloudServer
    box: BoxIdentity

    @property
    def url(self) -> str:
        return self.cloud.url

    def signed(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """A request signed by the enrolled box, whatever its body."""
        ts = repr(time.time())
        sig = crypto.b64(self.box.sign(request_message(method, path, ts, body)))
        h = {"X-Box-Time": ts, "X-Box-Signature": sig, "Content-Type": "application/json"}
        h.update(headers or {})
        return requests.request(method, self.url + path, data=body, headers=h, timeout=30)

    def admin(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {ADMIN}", **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)


@contextmanager
def threaded_cloud(tmp: Path) -> Iterator[ThreadedCloud]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    thread = threading.Thread(target=lambda: (asyncio.set_event_loop(loop), loop.run_forever()))
    thread.start()
    try:
        cloud = asyncio.run_coroutine_threadsafe(start_cloud(tmp), loop).result(30)
        started.set()
        assert cloud.store is not None
        code = cloud.store.create_claim(TENANT, VENUE)
        ident = new_identity(VENUE, cloud.url)
        req = {
            "box_id": ident.box_id,
            "venue": ident.venue,
            "claim": code,
            "box_sign_pub": crypto.b64(ident.sign_pub),
            "box_kx_pub": crypto.b64(ident.kx_pub),
            "agent_version": "test",
        }
        r = requests.post(
            cloud.url + "/v1/enrol",
            data=json.dumps({**req, "sig": crypto.b64(ident.sign(canonical(req)))}),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        ident = dataclasses.replace(
            ident,
            tenant=doc["tenant"],
            cloud_sign_pub=doc["cloud_sign_pub"],
            cloud_kx_pub=doc["cloud_kx_pub"],
        )
        try:
            yield ThreadedCloud(cloud, ident)
        finally:
            asyncio.run_coroutine_threadsafe(cloud.stop(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
