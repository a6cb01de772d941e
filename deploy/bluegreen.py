#!/usr/bin/env python3
"""Blue-green release of the cloud service on Kubernetes.

    deploy/bluegreen.py --namespace beerflow-prod --overlay deploy/k8s/overlays/prod \\
        --image registry.example.com/beerflow/cloud:0.2.0
    deploy/bluegreen.py --namespace beerflow-prod status

The Service's selector names the live slot (blue or green). A release: run the migration Job
with the new image and wait for it; give the idle slot the new image and as many replicas as
the live one; wait until every one of them is ready (readiness = the database answers); only
then flip the Service's selector and the HPA to it, and scale the old slot to zero (or keep it
with --keep-old, for an instant switch back). If the migration fails or the new slot is not
ready in time, the idle slot goes back to zero and traffic never moved. After a switch the
overlay's live-slot.yaml is rewritten so that re-applying the manifests keeps the live slot.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SERVICE = "beerflow-cloud"
HPA = "beerflow-cloud"
MIGRATE_JOB = "beerflow-cloud-migrate"
SLOT_LABEL = "beerflow.io/slot"
SLOTS = ("blue", "green")
FIELD_MANAGER = "beerflow-bluegreen"


class SwitchFailed(Exception):
    """The release stopped before traffic moved; the live slot is untouched."""


class Cluster(Protocol):
    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...
    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None: ...
    def create(self, doc: dict[str, Any]) -> None: ...
    def delete(self, kind: str, name: str) -> None: ...


def deployment(slot: str) -> str:
    return f"{SERVICE}-{slot}"


def other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


@dataclass(frozen=True)
class Plan:
    live: str
    idle: str
    replicas: int
    image: str


@dataclass(frozen=True)
class Waiter:
    """Polls a condition until it holds or the deadline passes (clock and sleep injected)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval_s: float = 2.0

    def until(self, what: str, timeout_s: float, check: Callable[[], bool | None]) -> None:
        deadline = self.clock() + timeout_s
        while True:
            done = check()
            if done:
                return
            if done is None:
                raise SwitchFailed(f"{what}: failed")
            if self.clock() >= deadline:
                raise SwitchFailed(f"{what}: not done after {timeout_s:.0f} s")
            self.sleep(self.interval_s)


def live_slot(cluster: Cluster) -> str:
    svc = cluster.get("service", SERVICE)
    if svc is None:
        raise SwitchFailed(f"service {SERVICE} not found: apply the manifests first")
    slot = svc["spec"].get("selector", {}).get(SLOT_LABEL)
    if slot not in SLOTS:
        raise SwitchFailed(f"service {SERVICE} selects slot {slot!r}, not blue or green")
    return str(slot)


def plan(cluster: Cluster, image: str) -> Plan:
    live = live_slot(cluster)
    dep = cluster.get("deployment", deployment(live))
    if dep is None:
        raise SwitchFailed(f"deployment {deployment(live)} not found")
    replicas = int(dep["spec"].get("replicas") or 1)
    hpa = cluster.get("horizontalpodautoscaler", HPA)
    if hpa is not None:
        replicas = max(replicas, int(hpa["spec"].get("minReplicas", 1)))
    return Plan(live, other(live), replicas, image)


def deployment_ready(cluster: Cluster, name: str, replicas: int) -> bool:
    dep = cluster.get("deployment", name)
    if dep is None:
        return False
    st = dep.get("status", {})
    return bool(
        st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 1)
        and st.get("updatedReplicas", 0) == replicas
        and st.get("readyReplicas", 0) == replicas
        and st.get("availableReplicas", 0) == replicas
        and st.get("replicas", 0) == replicas  # no old pods left from an earlier rollout
    )


def job_done(cluster: Cluster, name: str) -> bool | None:
    """True once the Job succeeded, None once it failed, False while it runs."""
    job = cluster.get("job", name)
    if job is None:
        return False
    for cond in job.get("status", {}).get("conditions", []):
        if cond.get("status") == "True" and cond.get("type") == "Complete":
            return True
        if cond.get("status") == "True" and cond.get("type") == "Failed":
            return None
    return False


def migrate(
    cluster: Cluster, job: dict[str, Any], image: str, wait: Waiter, timeout: float
) -> None:
    job = json.loads(json.dumps(job))
    for c in job["spec"]["template"]["spec"]["containers"]:
        c["image"] = image
    job["metadata"].pop("resourceVersion", None)
    cluster.delete("job", MIGRATE_JOB)
    cluster.create(job)
    wait.until(f"migration job {MIGRATE_JOB}", timeout, lambda: job_done(cluster, MIGRATE_JOB))


def switch(
    cluster: Cluster,
    image: str,
    *,
    migration_job: dict[str, Any] | None,
    wait: Waiter,
    timeout_s: float = 600.0,
    keep_old: bool = False,
    log: Callable[[str], None] = print,
) -> Plan:
    p = plan(cluster, image)
    log(f"live slot {p.live}; releasing {image} to {p.idle} with {p.replicas} replicas")
    if migration_job is not None:
        migrate(cluster, migration_job, image, wait, timeout_s)
        log("migration complete")
    idle = deployment(p.idle)
    container = cluster.get("deployment", idle)
    if container is None:
        raise SwitchFailed(f"deployment {idle} not found")
    name = container["spec"]["template"]["spec"]["containers"][0]["name"]
    cluster.patch(
        "deployment",
        idle,
        {
            "spec": {
                "replicas": p.replicas,
                "template": {"spec": {"containers": [{"name": name, "image": image}]}},
            }
        },
    )
    try:
        wait.until(
            f"deployment {idle} ready",
            timeout_s,
            lambda: deployment_ready(cluster, idle, p.replicas),
        )
    except SwitchFailed:
        cluster.patch("deployment", idle, {"spec": {"replicas": 0}})
        log(f"{idle} did not become ready: scaled back to 0; traffic stays on {p.live}")
        raise
    cluster.patch("service", SERVICE, {"spec": {"selector": {SLOT_LABEL: p.idle}}})
    if live_slot(cluster) != p.idle:
        raise SwitchFailed(f"service {SERVICE} did not take the new selector")
    log(f"service {SERVICE} now selects {p.idle}")
    if cluster.get("horizontalpodautoscaler", HPA) is not None:
        cluster.patch("horizontalpodautoscaler", HPA, {"spec": {"scaleTargetRef": {"name": idle}}})
    if not keep_old:
        cluster.patch("deployment", deployment(p.live), {"spec": {"replicas": 0}})
        log(f"{deployment(p.live)} scaled to 0")
    return p


def live_slot_yaml(slot: str) -> str:
    """The overlay patch that records the live slot (see deploy/k8s/overlays/*/live-slot.yaml)."""
    return f"""# Which slot is live. deploy/bluegreen.py rewrites this file after a switch, so that
# re-applying the manifests keeps traffic where it is.
apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
spec:
  selector:
    {SLOT_LABEL}: {slot}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {HPA}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {deployment(slot)}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {deployment(other(slot))}
spec:
  replicas: 0
"""


# ---- kubectl ------------------------------------------------------------------------------------

Runner = Callable[[Sequence[str], str | None], subprocess.CompletedProcess[str]]


def run_kubectl(argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=120)


class Kubectl:
    """The Cluster interface over the kubectl CLI, in one namespace."""

    def __init__(self, namespace: str, runner: Runner = run_kubectl) -> None:
        self.base = ["kubectl", "--namespace", namespace]
        self.runner = runner

    def _run(self, *args: str, stdin: str | None = None) -> str:
        r = self.runner([*self.base, *args], stdin)
        if r.returncode != 0:
            raise SwitchFailed(f"kubectl {' '.join(args[:3])}: {r.stderr.strip()}")
        return r.stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = self._run("get", kind, name, "--ignore-not-found", "--output", "json")
        return json.loads(out) if out.strip() else None

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        self._run(
            "patch",
            kind,
            name,
            "--type",
            "strategic",
            "--field-manager",
            FIELD_MANAGER,
            "--patch",
            json.dumps(patch),
        )

    def create(self, doc: dict[str, Any]) -> None:
        self._run("create", "--field-manager", FIELD_MANAGER, "-f", "-", stdin=json.dumps(doc))

    def delete(self, kind: str, name: str) -> None:
        self._run("delete", kind, name, "--ignore-not-found", "--wait=true")


def overlay_job(overlay: Path) -> dict[str, Any]:
    """The migration Job as the overlay renders it (namespace, labels and all)."""
    import yaml

    r = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    if r.returncode != 0:
        raise SwitchFailed(f"kubectl kustomize {overlay}: {r.stderr.strip()}")
    for doc in yaml.safe_load_all(r.stdout):
        if doc and doc.get("kind") == "Job" and doc["metadata"]["name"] == MIGRATE_JOB:
            return dict(doc)
    raise SwitchFailed(f"{overlay} renders no Job {MIGRATE_JOB}")


def main(argv: Sequence[str] | None = None, cluster: Cluster | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--namespace", required=True)
    p.add_argument("--overlay", type=Path, help="kustomize overlay: migration Job, live-slot.yaml")
    p.add_argument("--image", help="the image to release (registry/beerflow/cloud:VERSION)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per wait (default 600)")
    p.add_argument("--keep-old", action="store_true", help="leave the old slot running")
    p.add_argument("--no-migrate", action="store_true", help="skip the migration Job")
    p.add_argument("command", nargs="?", default="switch", choices=("switch", "status"))
    args = p.parse_args(argv)
    k = cluster or Kubectl(args.namespace)
    try:
        if args.command == "status":
            live = live_slot(k)
            for slot in SLOTS:
                dep = k.get("deployment", deployment(slot)) or {}
                images = [c["image"] for c in dep["spec"]["template"]["spec"]["containers"]]
                st = dep.get("status", {})
                mark = "live" if slot == live else "idle"
                print(f"{slot} ({mark}): {', '.join(images)}; ready {st.get('readyReplicas', 0)}")
            return 0
        if not args.image:
            p.error("--image is required to switch")
        if args.overlay is None and not args.no_migrate:
            p.error("--overlay is required to run the migration (or pass --no-migrate)")
        job = None if args.no_migrate else overlay_job(args.overlay)
        done = switch(
            k,
            args.image,
            migration_job=job,
            wait=Waiter(),
            timeout_s=args.timeout,
            keep_old=args.keep_old,
        )
        if args.overlay is not None:
            (args.overlay / "live-slot.yaml").write_text(live_slot_yaml(done.idle))
            print(f"wrote {args.overlay / 'live-slot.yaml'}: commit it")
    except SwitchFailed as exc:
        print(f"bluegreen: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
