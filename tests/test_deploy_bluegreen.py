"""The blue-green switch's logic (deploy/bluegreen.py).

No Kubernetes API server can run on this machine (no container runtime, no kind or k3s), so
the switch runs against an in-memory cluster that models what the script reads: the
Deployment controller's status fields (a pod becomes ready a few polls after its Deployment
asks for it, unless its image is broken), a Job's conditions, the Service's selector and the
HPA's target. The kubectl command lines are checked separately, and the live-slot file the
script writes is rendered by the real `kubectl kustomize`."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bluegreen", ROOT / "deploy" / "bluegreen.py")
assert _spec is not None and _spec.loader is not None
bg = importlib.util.module_from_spec(_spec)
sys.modules["bluegreen"] = bg
_spec.loader.exec_module(bg)

OLD, NEW, BROKEN = "reg/beerflow/cloud:0.1.0", "reg/beerflow/cloud:0.2.0", "reg/beerflow/cloud:bad"


def render(overlay: Path) -> list[dict[str, Any]]:
    r = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


class FakeCluster:
    """In-memory objects plus a crude Deployment and Job controller, advanced on every read."""

    READY_AFTER = 3  # polls before a new pod reports ready

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[str] = []
        self.age: dict[str, int] = {}
        self.failing_migration = False
        for d in docs:
            self.objects[(d["kind"].lower(), d["metadata"]["name"])] = copy.deepcopy(d)
        for (kind, name), d in self.objects.items():
            if kind == "deployment":
                d["metadata"]["generation"] = 1
                d["spec"].setdefault("replicas", 1)
                for c in d["spec"]["template"]["spec"]["containers"]:
                    c["image"] = OLD
                self._settle(name, d)
        self.objects.pop(("job", bg.MIGRATE_JOB), None)  # finished and collected long ago

    def _settle(self, name: str, d: dict[str, Any]) -> None:
        n = d["spec"]["replicas"]
        d["status"] = {k: n for k in ("replicas", "updatedReplicas", "readyReplicas")}
        d["status"] |= {"availableReplicas": n, "observedGeneration": d["metadata"]["generation"]}

    def _tick(self, kind: str, name: str) -> None:
        d = self.objects.get((kind, name))
        if d is None:
            return
        if kind == "deployment":
            self.age[name] = self.age.get(name, 0) + 1
            image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            if self.age[name] >= self.READY_AFTER and image != BROKEN:
                self._settle(name, d)
        if kind == "job" and "conditions" not in d.get("status", {}):
            kind_ = "Failed" if self.failing_migration else "Complete"
            d["status"] = {"conditions": [{"type": kind_, "status": "True"}]}

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        self._tick(kind, name)
        d = self.objects.get((kind, name))
        return copy.deepcopy(d) if d is not None else None

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        self.log.append(f"patch {kind}/{name} {json.dumps(patch, sort_keys=True)}")
        d = self.objects[(kind, name)]
        spec = patch["spec"]
        if kind == "deployment":
            if "replicas" in spec:
                d["spec"]["replicas"] = spec["replicas"]
            for pc in spec.get("template", {}).get("spec", {}).get("containers", []):
                for c in d["spec"]["template"]["spec"]["containers"]:
                    if c["name"] == pc["name"]:
                        c["image"] = pc["image"]
            d["metadata"]["generation"] += 1
            self.age[name] = 0
            if d["spec"]["replicas"] == 0:
                self._settle(name, d)
        elif kind == "service":
            d["spec"]["selector"].update(spec["selector"])
        elif kind == "horizontalpodautoscaler":
            d["spec"]["scaleTargetRef"].update(spec["scaleTargetRef"])

    def create(self, doc: dict[str, Any]) -> None:
        key = (doc["kind"].lower(), doc["metadata"]["name"])
        assert key not in self.objects, f"{key} exists"
        image = doc["spec"]["template"]["spec"]["containers"][0]["image"]
        self.log.append(f"create {key[0]}/{key[1]} {image}")
        self.objects[key] = copy.deepcopy(doc)

    def delete(self, kind: str, name: str) -> None:
        self.log.append(f"delete {kind}/{name}")
        self.objects.pop((kind, name), None)

    # what the tests look at
    def selector(self) -> str:
        return str(self.objects[("service", bg.SERVICE)]["spec"]["selector"][bg.SLOT_LABEL])

    def hpa_target(self) -> str:
        return str(
            self.objects[("horizontalpodautoscaler", bg.HPA)]["spec"]["scaleTargetRef"]["name"]
        )

    def dep(self, slot: str) -> dict[str, Any]:
        return self.objects[("deployment", bg.deployment(slot))]


class ManualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (with kustomize) is required: it is in the machine image")
    k8s = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy" / "k8s", k8s)
    return k8s / "overlays" / "prod"


@pytest.fixture
def cluster(overlay: Path) -> FakeCluster:
    c = FakeCluster(render(overlay))
    c.dep("blue")["spec"]["replicas"] = 4  # the HPA scaled the live slot up
    c._settle("beerflow-cloud-blue", c.dep("blue"))
    return c


def job(overlay: Path) -> dict[str, Any]:
    return bg.overlay_job(overlay)


def waiter(t: ManualTime) -> Any:
    return bg.Waiter(clock=t.clock, sleep=t.sleep, interval_s=2.0)


def test_switch_migrates_then_fills_the_idle_slot_then_flips_traffic(
    cluster: FakeCluster, overlay: Path
) -> None:
    t = ManualTime()
    p = bg.switch(cluster, NEW, migration_job=job(overlay), wait=waiter(t), log=lambda _: None)
    assert (p.live, p.idle, p.replicas) == ("blue", "green", 4)
    assert cluster.selector() == "green"
    assert cluster.hpa_target() == "beerflow-cloud-green"
    green, blue = cluster.dep("green"), cluster.dep("blue")
    assert green["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert green["spec"]["replicas"] == 4 and green["status"]["readyReplicas"] == 4
    assert blue["spec"]["replicas"] == 0
    assert blue["spec"]["template"]["spec"]["containers"][0]["image"] == OLD
    # Order: migration (with the new image, in the overlay's namespace) before the new slot
    # is scaled, and the Service flipped only after the new slot was ready.
    steps = [line.split(" {")[0] for line in cluster.log]
    assert steps == [
        "delete job/beerflow-cloud-migrate",
        f"create job/beerflow-cloud-migrate {NEW}",
        "patch deployment/beerflow-cloud-green",
        "patch service/beerflow-cloud",
        "patch horizontalpodautoscaler/beerflow-cloud",
        "patch deployment/beerflow-cloud-blue",
    ]
    assert cluster.objects[("job", bg.MIGRATE_JOB)]["metadata"]["namespace"] == "beerflow-prod"
    assert t.now == 2.0 * (FakeCluster.READY_AFTER - 1)  # waited on readiness, no longer


def test_a_slot_that_never_gets_ready_never_takes_traffic(
    cluster: FakeCluster, overlay: Path
) -> None:
    t = ManualTime()
    with pytest.raises(bg.SwitchFailed, match="beerflow-cloud-green ready: not done after 60 s"):
        bg.switch(
            cluster,
            BROKEN,
            migration_job=None,
            wait=waiter(t),
            timeout_s=60,
            log=lambda _: None,
        )
    assert t.now >= 60
    assert cluster.selector() == "blue" and cluster.hpa_target() == "beerflow-cloud-blue"
    assert cluster.dep("green")["spec"]["replicas"] == 0
    assert cluster.dep("blue")["spec"]["replicas"] == 4
    assert not any("service" in line or "blue" in line for line in cluster.log)


def test_a_failed_migration_stops_the_release_before_any_slot_changes(
    cluster: FakeCluster, overlay: Path
) -> None:
    cluster.failing_migration = True
    with pytest.raises(bg.SwitchFailed, match="migration job beerflow-cloud-migrate: failed"):
        bg.switch(
            cluster, NEW, migration_job=job(overlay), wait=waiter(ManualTime()), log=lambda _: None
        )
    assert not any(line.startswith("patch") for line in cluster.log)
    assert cluster.selector() == "blue"


def test_switching_twice_returns_to_blue_and_keep_old_leaves_it_running(
    cluster: FakeCluster,
) -> None:
    t = ManualTime()
    bg.switch(cluster, NEW, migration_job=None, wait=waiter(t), keep_old=True, log=lambda _: None)
    assert cluster.selector() == "green" and cluster.dep("blue")["spec"]["replicas"] == 4
    p = bg.switch(cluster, OLD, migration_job=None, wait=waiter(t), log=lambda _: None)
    assert (p.live, p.idle) == ("green", "blue")
    assert cluster.selector() == "blue" and cluster.hpa_target() == "beerflow-cloud-blue"
    assert cluster.dep("green")["spec"]["replicas"] == 0


def test_main_writes_the_live_slot_and_the_overlay_renders_it(
    cluster: FakeCluster, overlay: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (overlay / "live-slot.yaml").read_text() == bg.live_slot_yaml("blue")
    # main() waits with the real clock: a cluster whose pods are ready at once keeps it short.
    cluster.READY_AFTER = 1
    argv = ["--namespace", "beerflow-prod", "--overlay", str(overlay), "--image", NEW]
    assert bg.main(argv, cluster=cluster) == 0
    assert "live-slot.yaml: commit it" in capsys.readouterr().out
    docs = render(overlay)
    (svc,) = [d for d in docs if d["kind"] == "Service"]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert svc["spec"]["selector"][bg.SLOT_LABEL] == "green"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "beerflow-cloud-green"
    assert deps["beerflow-cloud-blue"]["spec"]["replicas"] == 0
    assert "replicas" not in deps["beerflow-cloud-green"]["spec"]
    assert bg.main(["--namespace", "x", "status"], cluster=cluster) == 0
    out = capsys.readouterr().out
    assert f"green (live): {NEW}" in out and f"blue (idle): {OLD}" in out


def test_a_service_selecting_no_known_slot_is_refused(cluster: FakeCluster) -> None:
    cluster.objects[("service", bg.SERVICE)]["spec"]["selector"][bg.SLOT_LABEL] = "purple"
    with pytest.raises(bg.SwitchFailed, match="purple"):
        bg.switch(cluster, NEW, migration_job=None, wait=waiter(ManualTime()), log=print)


def test_kubectl_command_lines() -> None:
    calls: list[tuple[list[str], str | None]] = []

    def runner(argv: Any, stdin: str | None) -> subprocess.CompletedProcess[str]:
        calls.append((list(argv), stdin))
        out = "" if "get" not in argv else json.dumps({"kind": "Service"})
        return subprocess.CompletedProcess(argv, 0, out, "")

    k = bg.Kubectl("beerflow-prod", runner)
    assert k.get("service", "beerflow-cloud") == {"kind": "Service"}
    k.patch("service", "beerflow-cloud", {"spec": {"selector": {bg.SLOT_LABEL: "green"}}})
    k.create({"kind": "Job"})
    k.delete("job", "beerflow-cloud-migrate")
    ns = ["kubectl", "--namespace", "beerflow-prod"]
    assert calls[0][0] == [
        *ns,
        "get",
        "service",
        "beerflow-cloud",
        "--ignore-not-found",
        "--output",
        "json",
    ]
    assert calls[1][0][:7] == [*ns, "patch", "service", "beerflow-cloud", "--type"]
    assert json.loads(calls[1][0][-1]) == {"spec": {"selector": {bg.SLOT_LABEL: "green"}}}
    assert "--field-manager" in calls[1][0] and calls[2][1] == '{"kind": "Job"}'
    assert calls[3][0][-2:] == ["--ignore-not-found", "--wait=true"]

    def failing(argv: Any, stdin: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Error from server (Forbidden)")

    with pytest.raises(bg.SwitchFailed, match="Forbidden"):
        bg.Kubectl("x", failing).get("service", "beerflow-cloud")
