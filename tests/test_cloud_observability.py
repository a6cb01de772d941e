"""The cloud's probes and Prometheus metrics: /healthz, /readyz (503 when the database is cut
off), /metrics behind the admin token and on the separate metrics listener, per-tenant ingest
counters and latency histograms, and the `serve`, `migrate` and `init-secrets` commands as real
processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from cloud_api.cli import normalise_db_url
from cloud_sync import crypto
from cloud_sync.envelope import SyncRecord, seal
from cloud_sync.identity import BoxIdentity
from tests.peers.cloud import (  # noqa: F401 - cloud and postgres_url are fixtures
    ADMIN,
    TENANT,
    CloudServer,
    cloud,
    enrolled_box,
    free_port,
    postgres_url,
    reset_postgres,
    start_cloud,
)

AUTH = {"Authorization": f"Bearer {ADMIN}"}


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(got: Samples, name: str, **labels: str) -> float:
    return got[(name, tuple(sorted(labels.items())))]


def envelope(ident: BoxIdentity, streams: dict[str, int]) -> bytes:
    recs = []
    for stream, n in streams.items():
        for seq in range(1, n + 1):
            body = {"type": "reading", "device": "f1", "point": "t", "v": seq}
            recs.append(SyncRecord(stream, seq, 1.0, body))
    _, blob = seal(
        ident.box_id, ident.venue, ident.kid, ident.key(ident.kid, crypto.UPLINK), recs, 2.0
    )
    return blob


async def scrape(s: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> str:
    async with s.get(url, headers=headers or {}) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        return await r.text()


async def test_probes_answer_without_a_token_and_metrics_need_one(cloud: CloudServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(cloud.url + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with s.get(cloud.url + "/readyz") as r:
            assert r.status == 200 and (await r.json()) == {"status": "ready", "database": "ok"}
        async with s.get(cloud.url + "/metrics") as r:
            assert r.status == 401
        text = await scrape(s, cloud.url + "/metrics", AUTH)
    assert "beerflow_cloud_build_info" in text


async def test_ingest_counts_per_tenant_and_stream_and_times_each_route(
    tmp_path: Path, cloud: CloudServer
) -> None:
    ident, _ = await enrolled_box(cloud, tmp_path)
    blob = envelope(ident, {"telemetry": 7, "events": 2})
    async with aiohttp.ClientSession() as s:
        async with s.post(cloud.url + "/v1/ingest", data=blob) as r:
            assert r.status == 200
        async with s.post(cloud.url + "/v1/ingest", data=blob) as r:
            assert r.status == 409  # a replay is refused and counted as such
        async with s.get(cloud.url + "/v1/boxes/nope/documents") as r:
            assert r.status == 403
        got = samples(await scrape(s, cloud.url + "/metrics", AUTH))
    assert value(got, "beerflow_cloud_enrolments_total", tenant=TENANT) == 1
    assert value(got, "beerflow_cloud_ingest_envelopes_total", tenant=TENANT) == 1
    records = "beerflow_cloud_ingest_records_total"
    assert value(got, records, tenant=TENANT, stream="telemetry") == 7
    assert value(got, records, tenant=TENANT, stream="events") == 2
    assert value(got, "beerflow_cloud_ingest_refused_total", status="409") == 1
    assert value(got, "beerflow_cloud_ingest_seconds_count") == 1
    ingest = {"method": "POST", "route": "/v1/ingest"}
    assert value(got, "beerflow_cloud_http_request_seconds_count", **ingest) == 2
    assert value(got, "beerflow_cloud_http_requests_total", status="200", **ingest) == 1
    assert value(got, "beerflow_cloud_http_requests_total", status="409", **ingest) == 1
    # A route is labelled by its pattern, so box ids never become label values.
    docs = {"method": "GET", "route": "/v1/boxes/{box}/documents", "status": "403"}
    assert value(got, "beerflow_cloud_http_requests_total", **docs) == 1
    assert not any("nope" in str(k) for k in got)


@contextlib.contextmanager
def cuttable_relay(target: int) -> Iterator[tuple[int, Callable[[], None]]]:
    """A socat relay to the database that the test can cut: killing its process group ends
    every relayed connection and the listener, exactly what a pod sees when its database goes
    away. (A relay on the test's own event loop would deadlock: the engine connects
    synchronously from that loop's thread when the cloud starts.)"""
    port = free_port()
    proc = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"TCP:127.0.0.1:{target}"],
        start_new_session=True,
    )

    def cut() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "socat did not listen in 10 s"
            time.sleep(0.01)
        yield port, cut
    finally:
        cut()


async def test_readyz_fails_when_the_database_is_cut_off_and_healthz_stays_up(
    tmp_path: Path, postgres_url: str
) -> None:
    reset_postgres(postgres_url)
    pg_port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    with cuttable_relay(pg_port) as (port, cut):
        c = await start_cloud(tmp_path / "cloud", postgres_url.replace(f":{pg_port}/", f":{port}/"))
        try:
            async with aiohttp.ClientSession() as s:

                async def ready() -> int:
                    async with s.get(c.url + "/readyz") as r:
                        return r.status

                # Ready once the database answers within 2 s (a loaded machine may need a retry).
                deadline = time.monotonic() + 30
                while await ready() != 200:
                    assert time.monotonic() < deadline, "never ready"
                cut()
                async with s.get(c.url + "/readyz") as r:
                    assert r.status == 503
                    assert (await r.json())["status"] == "unready"
                async with s.get(c.url + "/healthz") as r:
                    assert r.status == 200
        finally:
            await c.stop()


def test_libpq_urls_become_sqlalchemy_urls() -> None:
    assert normalise_db_url("postgresql://app:pw@db-rw:5432/app") == (
        "postgresql+psycopg://app:pw@db-rw:5432/app"
    )
    assert normalise_db_url("postgres://a@h/d") == "postgresql+psycopg://a@h/d"
    assert normalise_db_url("sqlite:////x/cloud.db") == "sqlite:////x/cloud.db"
    assert normalise_db_url("postgresql+psycopg://a@h/d") == "postgresql+psycopg://a@h/d"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_api.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_init_secrets_writes_private_files_once(tmp_path: Path) -> None:
    d = tmp_path / "secrets"
    r = cli("init-secrets", str(d))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in ("keys.json", "admin.token"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    token = (d / "admin.token").read_text()
    assert token not in r.stdout  # the secret itself is never printed
    again = cli("init-secrets", str(d))
    assert again.returncode == 1 and "not empty" in again.stderr
    assert (d / "admin.token").read_text() == token


def test_migrate_takes_the_libpq_url_from_the_environment(
    tmp_path: Path, postgres_url: str
) -> None:
    reset_postgres(postgres_url)
    libpq = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    r = cli("--data", str(tmp_path / "d"), "migrate", env={"BEERFLOW_CLOUD_DB": libpq})
    assert r.returncode == 0, r.stderr
    assert "on postgresql:" in r.stdout and "tables" in r.stdout
    assert not (tmp_path / "d" / "cloud.db").exists()
    bad = cli("--data", str(tmp_path / "d"), "migrate", env={"BEERFLOW_CLOUD_DB": "nope://x"})
    assert bad.returncode != 0


async def test_serve_exposes_metrics_on_its_own_listener_without_a_token(tmp_path: Path) -> None:
    port, mport = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloud_api.cli",
        "--data",
        str(tmp_path / "data"),
        "serve",
        "--port",
        str(port),
        "--metrics-port",
        str(mport),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None, "serve exited"
                assert time.monotonic() < deadline, "serve did not come up in 30 s"
                await asyncio.sleep(0.05)
            text = await scrape(s, f"http://127.0.0.1:{mport}/metrics")
            assert "beerflow_cloud_http_requests_total" in text
            async with s.get(f"http://127.0.0.1:{mport}/v1/fleet") as r:
                assert r.status == 404  # the metrics listener serves nothing else
            async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 401
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
