"""deploy/k8s: every overlay renders with `kubectl kustomize`, every object is valid against
the Kubernetes schemas (offline, kubernetes-validate), and the rendered objects keep the rules
the operations rely on: probes, resources, an unprivileged read-only container, headless gRPC
Services with round-robin targets, and every setting each process reads (and nothing else)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from heron_common import tracing
from heron_common.registry import SERVICES

from tests.unit.deploy.test_compose import COMPONENTS, settings_class, variables

ROOT = Path(__file__).resolve().parents[3]
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.30.0"
# Not Kubernetes' own kinds: traefik's (checked by the rules below instead).
CUSTOM_GROUPS = ("traefik.io/",)


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        message = "kubectl is not installed (Debian's `kubectl` package carries kustomize)"
        if os.environ.get("CI"):
            pytest.fail(message + ": .ci/run installs it")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    overlay = ROOT / "deploy" / "k8s" / "overlays" / request.param
    done = subprocess.run(
        [_kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return request.param, [d for d in yaml.safe_load_all(done.stdout) if d]


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def test_every_object_is_valid_kubernetes(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ServiceAccount", "ConfigMap", "Job"} <= kinds
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    for thing in objects:
        if thing["apiVersion"].startswith(CUSTOM_GROUPS):
            continue
        kubernetes_validate.validate(thing, KUBERNETES_VERSION, strict=True)
    # No secret values in the repository: the Secret is the operator's.
    assert _of(objects, "Secret") == []


def test_every_container_is_probed_limited_and_unprivileged(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    for workload in _workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        mounts_tmp = any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        assert mounts_tmp, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            assert not container["image"].endswith(":latest"), name
            if workload["kind"] == "Deployment":
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in container, (name, probe)
    for account in _of(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_grpc_services_are_headless_and_dialled_round_robin(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    services = {s["metadata"]["name"]: s for s in _of(objects, "Service")}
    common = next(
        c["data"]
        for c in _of(objects, "ConfigMap")
        if c["metadata"]["name"].startswith("heron-common")
    )
    for service in SERVICES:
        found = services[f"heron-{service.name}"]
        assert found["spec"]["clusterIP"] == "None", service.name
        (port,) = found["spec"]["ports"]
        assert port["port"] == service.default_port and port["appProtocol"] == "grpc"
        assert common[service.target_variable] == f"dns:///heron-{service.name}:{port['port']}"
        deployment = next(
            d
            for d in _of(objects, "Deployment")
            if d["metadata"]["name"] == f"heron-{service.name}"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == service.default_port, (service.name, probe)
    assert services["heron-gateway"]["spec"]["type"] == "ClusterIP"


def test_draining_fits_the_grace_period(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    configs = {
        c["metadata"]["name"].rsplit("-", 1)[0]: c["data"] for c in _of(objects, "ConfigMap")
    }
    for deployment in _of(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        pause = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
        data = configs[f"heron-{component}"]
        prefix = f"HERON_{component.upper()}_"
        drain = float(data.get(prefix + "SHUTDOWN_DRAIN_SECONDS", 0))
        grace = float(data.get(prefix + "SHUTDOWN_GRACE_SECONDS", 0))
        assert pod["terminationGracePeriodSeconds"] > pause + drain + grace, component


def test_scaling_disruption_and_network_rules(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, objects = rendered
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in _of(objects, "HorizontalPodAutoscaler")}
    assert scaled == {"heron-gateway", "heron-content"}
    budgets = {p["metadata"]["name"] for p in _of(objects, "PodDisruptionBudget")}
    assert budgets == {d["metadata"]["name"] for d in _of(objects, "Deployment")}
    policies = {p["metadata"]["name"]: p["spec"] for p in _of(objects, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    # Only traefik reaches the gateway; the services only from their callers.
    (rule,) = policies["gateway-from-traefik"]["ingress"]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "traefik"
    }
    for service in SERVICES:
        assert f"{service.name}-callers" in policies, service.name
    if overlay == "prod":
        for deployment in _of(objects, "Deployment"):
            spec = deployment["spec"]["template"]["spec"]
            keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
            assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
            assert deployment["spec"]["replicas"] >= 2
        assert _of(objects, "IngressRoute")
        for service in SERVICES:
            pod = next(
                d
                for d in _of(objects, "Deployment")
                if d["metadata"]["name"] == f"heron-{service.name}"
            )["spec"]["template"]
            assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
            port = pod["metadata"]["annotations"]["prometheus.io/port"]
            ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
            assert ports["metrics"] == int(port), service.name
    else:
        assert _of(objects, "Ingress")


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_each_process_gets_every_setting_it_reads_and_nothing_else(
    rendered: tuple[str, list[dict[str, Any]]], component: str
) -> None:
    _, objects = rendered
    configs = {c["metadata"]["name"]: c["data"] for c in _of(objects, "ConfigMap")}
    deployment = next(
        (d for d in _of(objects, "Deployment") if d["metadata"]["name"] == f"heron-{component}"),
        None,
    )
    assert deployment is not None, f"{component} is not deployed on Kubernetes"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert COMPONENTS[component] in container["command"]
    given = {e["name"] for e in container.get("env", [])}
    for source in container["envFrom"]:
        given |= set(configs[source["configMapRef"]["name"]])
    wanted = variables(settings_class(COMPONENTS[component]))
    given -= set(tracing.READS)  # OpenTelemetry's own, read outside the settings classes
    assert wanted - given == set(), "settings the process reads that the manifests do not set"
    assert given - wanted == set(), "settings the manifests set that the process never reads"
    # Secrets come from the Secret, never from a ConfigMap.
    for entry in container.get("env", []):
        assert "secretKeyRef" in entry["valueFrom"], entry["name"]


def test_the_migration_job_migrates_every_database(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    (job,) = _of(objects, "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["heron", "migrate"]
    given = {e["name"] for e in container["env"]}
    assert given == {s.database_variable for s in SERVICES}
