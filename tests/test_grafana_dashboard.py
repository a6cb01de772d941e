"""The Grafana dashboard in deploy/grafana: every panel queries metrics that a real box and a
real cloud expose, with labels those metrics carry."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloud_sync import crypto
from cloud_sync.signing import request_message
from edge_agent.bus import Bus, Overflow
from edge_agent.health import HealthRegistry
from edge_agent.messages import Reading
from edge_agent.metrics import AgentMetrics
from tests.peers.cloud import ADMIN, CloudServer, cloud, enrolled_box  # noqa: F401 - a fixture
from tests.test_cloud_observability import envelope

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "beerflow.json"
PROMQL_WORDS = {
    "sum", "rate", "increase", "by", "without", "histogram_quantile", "count", "max", "min",
    "avg", "le", "label_values", "on", "ignoring", "and", "or", "unless", "bool",
}  # fmt: skip


def exposed(text: str) -> dict[str, set[str]]:
    """Every sample name in an exposition, with the label names seen on it."""
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def box_metrics() -> dict[str, set[str]]:
    """The metrics of a box, from the agent's own registry and live collector."""
    m, health, bus = AgentMetrics(), HealthRegistry(), Bus()
    bus.subscribe("store", (Reading,), 10, Overflow.BLOCK)
    health.register("fridge-1", "modbus").ok(1.0)
    m.watch(health, bus)
    m.on_commit(5, 1, 0.002)
    return exposed(generate_latest(m.registry).decode())


async def cloud_metrics(cloud: CloudServer, tmp_path: Path) -> dict[str, set[str]]:
    ident, _ = await enrolled_box(cloud, tmp_path)
    blob = envelope(ident, {"telemetry": 3})
    async with aiohttp.ClientSession() as s:
        for _ in range(2):  # the second is a replay: a refusal
            async with s.post(cloud.url + "/v1/ingest", data=blob) as r:
                assert r.status in (200, 409)
        # A signed status report, as a box's sync client sends it.
        path = f"/v1/boxes/{ident.box_id}/status"
        raw = json.dumps({"agent_version": "test"}).encode()
        ts = repr(time.time())
        sig = crypto.b64(ident.sign(request_message("POST", path, ts, raw)))
        headers = {"X-Box-Time": ts, "X-Box-Signature": sig}
        async with s.post(cloud.url + path, data=raw, headers=headers) as r:
            assert r.status == 200, await r.text()
        async with s.get(cloud.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            return exposed(await r.text())


def queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        out += [(p["title"], t["expr"]) for t in p["targets"]]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"variable {v['name']}", v["definition"]))
    return out


async def test_every_panel_queries_metrics_that_exist_with_their_labels(
    cloud: CloudServer,
    tmp_path: Path,
) -> None:
    dash = json.loads(DASHBOARD.read_text())
    available = box_metrics() | await cloud_metrics(cloud, tmp_path)
    used = set()
    for title, expr in queries(dash):
        names = [
            n
            for n in re.findall(r"(?<![\w\"'])([a-zA-Z_:][\w:]*)\s*(?=[{\[)\s,]|$)", expr)
            if n not in PROMQL_WORDS and n.startswith("beerflow_")
        ]
        assert names, f"{title}: no metric in {expr!r}"
        for n in names:
            assert n in available, f"{title}: {n} is not exposed by the box or the cloud"
            used.add(n)
        labels = set().union(*(available[n] for n in names)) | {"le"}
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in labels, f"{title}: no metric of {names} has label {label!r}"
        for label in re.findall(r"[{,]\s*(\w+)\s*=~?", expr):
            assert label in labels, f"{title}: no metric of {names} has label {label!r}"
        for label in re.findall(r"\{\{(\w+)\}\}", json.dumps(dash)):
            assert any(label in v for v in available.values()), label
    # Both sides are on the dashboard, and the cloud's per-tenant counters are.
    assert any(n.startswith("beerflow_cloud_ingest_records") for n in used)
    assert any(n.startswith("beerflow_readings_accepted") for n in used)
    assert any(n.startswith("beerflow_store_commit_seconds_bucket") for n in used)


def test_a_panel_with_a_missing_metric_would_fail() -> None:
    # The check above is only as good as its extraction: it must find the name in a query
    # shaped like the dashboard's, so a renamed metric cannot slip through.
    expr = 'sum by (stream) (rate(beerflow_cloud_ingest_recordz_total{tenant=~"$tenant"}[5m]))'
    names = re.findall(r"(?<![\w\"'])([a-zA-Z_:][\w:]*)\s*(?=[{\[)\s,]|$)", expr)
    assert "beerflow_cloud_ingest_recordz_total" in names
    assert "beerflow_cloud_ingest_recordz_total" not in box_metrics()
