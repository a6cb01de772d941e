"""Signed downlink, box <-> cloud_api over loopback with real keys: venue config, rule set and
profile set applied atomically with a health check, rolled back when it fails, and unsigned,
wrongly signed, older, replayed and other-venue documents refused (chaos item (e))."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_api.cli import profile_set_body
from cloud_sync import crypto
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.downlink import (
    Applied,
    Downlink,
    DownlinkTargets,
    Refused,
    verify_document,
)
from cloud_sync.outbox import Outbox
from cloud_sync.signing import canonical
from edge_agent.clock import ManualClock
from edge_agent.messages import Event
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import TENANT, VENUE, CloudServer, cloud, enrolled_box, start_cloud  # noqa: F401 - cloud is a fixture

LIBRARY = Path(__file__).resolve().parents[1] / "firmware_profiles" / "library"

VENUE_V0 = """\
[venue]
id = "the-crown"
name = "The Crown"
timezone = "Europe/London"
"""

# Uses a profile that only the downlinked profile set provides.
VENUE_WITH_DEVICE = """\
[venue]
id = "the-crown"
name = "The Crown (downlinked)"
timezone = "Europe/London"

[profiles]
dirs = ["downlinked-profiles"]

[[devices]]
id = "fridge-1"
profile = "acme-fridge"
host = "127.0.0.1"
port = 5020
"""

RULES = """\
[[rules]]
id = "fridge-warm"
actions = [{type = "alarm"}]
[rules.trigger]
type = "threshold"
device = "fridge-1"
point = "temperature"
above = 5
"""


def acme_profile_set(tmp: Path, profile_id: str = "acme-fridge") -> str:
    d = tmp / f"set-{profile_id}"
    d.mkdir(exist_ok=True)
    text = (LIBRARY / "dixell-xr77u.toml").read_text(encoding="utf-8")
    text = text.replace('id = "dixell-xr77u"', f'id = "{profile_id}"')
    (d / "acme-fridge.toml").write_text(text, encoding="utf-8")
    return profile_set_body(str(d))


@dataclass
class Box:
    client: SyncClient
    downlink: Downlink
    writer: StoreWriter
    targets: DownlinkTargets
    events: list[Event]
    store: str


@pytest.fixture
def clock() -> ManualClock:
    # Signed box requests carry the box's time; the cloud checks it against its own clock.
    return ManualClock(start=time.time())


@pytest.fixture
async def box(tmp_path: Path, cloud: CloudServer, clock: ManualClock) -> AsyncIterator[Box]:
    (tmp_path / "box" / "etc").mkdir(parents=True)
    ident, path = await enrolled_box(cloud, tmp_path / "box")
    config = tmp_path / "box" / "etc" / "venue.toml"
    config.write_text(VENUE_V0, encoding="utf-8")
    store = str(tmp_path / "box" / "store.db")
    writer = StoreWriter(store, clock=clock)
    await writer.open()
    task = asyncio.create_task(writer.run())
    events: list[Event] = []

    async def publish(e: Event) -> None:
        events.append(e)

    targets = DownlinkTargets.beside(str(config))
    downlink = Downlink(targets, writer, clock, publish)
    client = SyncClient(
        ident,
        Outbox(ident),
        writer,
        identity_file=path,
        clock=clock,
        publish=publish,
        downlink=downlink,
        settings=SyncSettings(downlink_every_s=60.0, status_every_s=1e9),
    )
    try:
        yield Box(client, downlink, writer, targets, events, store)
    finally:
        await writer.stop()
        await task


async def cycle(box: Box, clock: ManualClock) -> None:
    """One sync client round that is due to fetch documents (the outbox is empty, so it
    ends idle: let the manual clock run the idle wait out)."""
    await clock.advance(61.0)
    async with aiohttp.ClientSession() as s:
        step = asyncio.create_task(box.client.step(s))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if step.done():
                break
            await clock.advance(1.0)
        await step


def kinds(box: Box) -> list[str]:
    return [e.kind for e in box.events]


async def reports(cloud: CloudServer, box: Box) -> list[tuple[str, int, str]]:
    got = await cloud.get(f"/v1/boxes/{box.client.identity.box_id}/reports")
    assert isinstance(got, list)
    return [(r["kind"], r["version"], r["status"]) for r in got]


def applied_versions(store: str) -> dict[str, int]:
    c = sqlite3.connect(store)
    try:
        return dict(c.execute("SELECT kind, applied_version FROM downlink_state").fetchall())
    finally:
        c.close()


async def test_config_rules_and_profiles_apply_atomically_and_report(
    tmp_path: Path, cloud: CloudServer, box: Box, clock: ManualClock
) -> None:
    assert cloud.store is not None
    cloud.store.publish(VENUE, "config", VENUE_WITH_DEVICE)
    cloud.store.publish(VENUE, "rules", RULES)
    cloud.store.publish(VENUE, "profiles", acme_profile_set(tmp_path))
    await cycle(box, clock)
    t = box.targets
    # The config needs the profile set applied in the same poll: profiles go first.
    assert Path(t.config).read_text(encoding="utf-8") == VENUE_WITH_DEVICE
    assert Path(t.config + ".previous").read_text(encoding="utf-8") == VENUE_V0
    assert Path(t.rules).read_text(encoding="utf-8") == RULES
    assert os.path.islink(t.profiles) and os.readlink(t.profiles) == "downlinked-profiles.v1"
    assert os.listdir(t.profiles) == ["acme-fridge.toml"]
    assert not [n for n in os.listdir(os.path.dirname(t.config)) if n.endswith(".staged")]
    applied = [e for e in box.events if e.kind == "config.applied"]
    assert [(e.data["kind"], e.data["version"]) for e in applied] == [
        ("profiles", 1),
        ("rules", 1),
        ("config", 1),
    ]
    assert all(e.data["restart_required"] is True for e in applied)
    assert sorted(await reports(cloud, box)) == [
        ("config", 1, "applied"),
        ("profiles", 1, "applied"),
        ("rules", 1, "applied"),
    ]
    assert applied_versions(box.store) == {"config": 1, "rules": 1, "profiles": 1}
    fleet = await cloud.get("/v1/fleet")
    assert isinstance(fleet, list) and fleet[0]["config_version"] == 1
    # Polling again: the cloud has nothing newer, nothing happens.
    await cycle(box, clock)
    assert kinds(box).count("config.applied") == 3
    # A newer profile set swaps the symlink; the previous version directory is kept.
    cloud.store.publish(VENUE, "profiles", acme_profile_set(tmp_path))
    await cycle(box, clock)
    assert os.readlink(t.profiles) == "downlinked-profiles.v2"
    assert os.path.isdir(t.profiles + ".v1")
    assert applied_versions(box.store)["profiles"] == 2


async def test_failing_health_check_rolls_back_and_reports_why(
    tmp_path: Path, cloud: CloudServer, box: Box, clock: ManualClock
) -> None:
    assert cloud.store is not None
    t = box.targets
    # A config using a profile nobody provides; a rule set that is not even TOML; a profile
    # set whose profile id does not match its file name.
    cloud.store.publish(VENUE, "config", VENUE_WITH_DEVICE.replace("downlinked-profiles", "."))
    cloud.store.publish(VENUE, "rules", "[[rules]\nid = ")
    cloud.store.publish(VENUE, "profiles", acme_profile_set(tmp_path, "other-id"))
    await cycle(box, clock)
    assert Path(t.config).read_text(encoding="utf-8") == VENUE_V0  # the running one stays
    assert not os.path.exists(t.rules)  # there was none before
    assert not os.path.lexists(t.profiles)
    assert not os.path.exists(t.profiles + ".v1")
    rolled = {e.data["kind"]: e for e in box.events if e.kind == "downlink.rolled_back"}
    assert set(rolled) == {"config", "rules", "profiles"}
    assert "unknown profile 'acme-fridge'" in rolled["config"].data["reason"]
    assert "must match the file name" in rolled["profiles"].data["reason"]
    got = await cloud.get(f"/v1/boxes/{box.client.identity.box_id}/reports")
    assert isinstance(got, list)
    assert sorted((r["kind"], r["status"]) for r in got) == [
        ("config", "rolled_back"),
        ("profiles", "rolled_back"),
        ("rules", "rolled_back"),
    ]
    assert any("unknown profile" in r["detail"] for r in got)
    assert applied_versions(box.store) == {"config": 0, "rules": 0, "profiles": 0}
    # The same failing version is not retried at every poll.
    await cycle(box, clock)
    assert len(await reports(cloud, box)) == 3
    # A fixed version goes through.
    cloud.store.publish(VENUE, "config", VENUE_V0.replace("The Crown", "The Crown v2"))
    await cycle(box, clock)
    assert "The Crown v2" in Path(t.config).read_text(encoding="utf-8")
    assert ("config", 2, "applied") in await reports(cloud, box)


def _signed(doc: dict[str, Any], key: Any) -> dict[str, Any]:
    body = {k: doc[k] for k in ("kind", "venue", "version", "body", "published_at")}
    return {**body, "sig": crypto.b64(key.sign(canonical(body)))}


async def test_unsigned_wrong_key_older_replayed_and_other_venue_are_refused(
    cloud: CloudServer, box: Box, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cloud.store is not None
    v1 = cloud.store.publish(VENUE, "config", VENUE_V0.replace("The Crown", "Crown v1"))
    v2 = cloud.store.publish(VENUE, "config", VENUE_V0.replace("The Crown", "Crown v2"))
    await cycle(box, clock)
    live = Path(box.targets.config)
    running = live.read_text(encoding="utf-8")
    assert "Crown v2" in running and applied_versions(box.store)["config"] == 2
    cloud.store.ensure_venue(TENANT, "the-other-pub")
    elsewhere = cloud.store.publish("the-other-pub", "config", VENUE_V0, version=9)
    evil = {**v2, "version": 3, "body": VENUE_V0.replace("The Crown", "Evil")}
    unsigned = {k: v for k, v in evil.items() if k != "sig"}
    wrong_key = _signed(evil, crypto.new_signing_key())
    tampered = {**v2, "version": 3}  # a real signature over other content
    # A compromised documents endpoint (or someone in the middle) serves all of these,
    # whatever versions the box says it has.
    served = [unsigned, wrong_key, tampered, v1, v2, elsewhere]
    monkeypatch.setattr(cloud.store, "latest_documents", lambda venue, have=None: served)
    await cycle(box, clock)
    assert live.read_text(encoding="utf-8") == running
    refused = [e.data for e in box.events if e.kind == "security.downlink_refused"]
    assert sorted(r["reason"] for r in refused) == sorted(
        ["unsigned", "bad_signature", "bad_signature", "older", "replayed", "wrong_venue"]
    )
    assert kinds(box).count("config.applied") == 1  # v2, before the attack
    sec = await cloud.get("/v1/security-events")
    assert isinstance(sec, list)
    # one row per kind and source a minute, with a count
    assert sum(e["count"] for e in sec if e["kind"] == "downlink_refused") == 6
    # Served again: refused again, but logged and reported once.
    await cycle(box, clock)
    assert len([e for e in box.events if e.kind == "security.downlink_refused"]) == 6
    # The floor survives a restart: a fresh box process still refuses the replay of v2.
    again = Downlink(box.targets, box.writer, clock)

    async def request(method: str, path: str, body: dict[str, Any] | None) -> Any:
        if method == "GET":
            return [v2]
        async with aiohttp.ClientSession() as s:
            return await box.client.signed_request(s, method, path, body)

    ident = box.client.identity
    await again.poll(ident.box_id, VENUE, crypto.unb64(ident.cloud_sign_pub), request)
    assert again.refusals == [("replayed", "config", 2)]
    assert live.read_text(encoding="utf-8") == running


PUB = crypto.public_bytes(crypto.new_signing_key())


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["kind", "venue", "version", "body", "published_at", "sig", "x"]),
                inner,
                max_size=7,
            )
        ),
        max_leaves=12,
    )
)
def test_verify_document_garbage_is_refused_never_crashes(raw: object) -> None:
    with pytest.raises(Refused):
        verify_document(raw, PUB, VENUE, {"config": Applied(1)})
