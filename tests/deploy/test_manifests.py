"""The shipped compose file and Kubernetes manifests (deploy/): they parse,
carry what an operator relies on (services, probes, volumes, the non-root
user), and the manifests pass the `kubernetes` client's models strictly (a
misspelt field is lost in the round trip and fails the test). `docker compose
config` and `kubectl kustomize` check them too where those tools work
offline; otherwise those sub-checks skip with the reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, in_ci

DEPLOY = REPO / "deploy"
KUBE = DEPLOY / "kubernetes"
MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in manifests() if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


# --- compose -----------------------------------------------------------------


def test_compose_has_the_facility_postgres_redis_and_the_docker_socket() -> None:
    spec = compose()
    services = spec["services"]
    assert {"facility", "postgres", "redis"} <= set(services)
    facility = services["facility"]
    assert facility["image"].startswith("${FACILITY_IMAGE:-facility/facility:")
    assert facility["network_mode"] == "host"
    assert facility["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Redis is part of the deployment (the shared cache), not an optional profile
    assert facility["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "profiles" not in services["redis"]
    assert "FACILITY_REDIS_URL" in facility["environment"]
    env = facility["environment"]
    assert env["DATABASE_URL"].startswith("postgres://facility:${POSTGRES_PASSWORD:?")
    assert "FACILITY_SECRET_KEY" in env and "FACILITY_DATA_DIR" in env
    mounts = {(m["source"], m["target"]) for m in facility["volumes"]}
    assert ("/var/run/docker.sock", "/var/run/docker.sock") in mounts
    # the data folder at the same path inside and outside (replicas' mounts)
    data = "${FACILITY_DATA_DIR:-/var/lib/facility}"
    assert (data, data) in mounts
    assert any("/healthz" in part for part in facility["healthcheck"]["test"])
    for name in ("facility", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "postgres-data" in spec["volumes"]
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])


def test_compose_env_example_names_every_variable_the_compose_file_reads() -> None:
    import re

    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (DEPLOY / "compose.env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert used <= listed, used - listed


def compose_command() -> list[str]:
    """docker-compose (scripts/ensure-compose.sh puts Debian's in place; CI
    runs it first), else the compose v2 plugin, else skip with the reason."""
    if in_ci():
        subprocess.run([str(REPO / "scripts/ensure-compose.sh")], capture_output=True, timeout=600)
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") is None:
        pytest.skip("neither docker-compose nor docker is installed")
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no output"])[0][:200]
        pytest.skip(f"no docker-compose and no compose plugin (scripts/ensure-compose.sh): {why}")
    return ["docker", "compose"]


def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    command = compose_command()
    env = tmp_path / "compose.env"
    env.write_text((DEPLOY / "compose.env.example").read_text())
    result = subprocess.run(
        [*command, "--env-file", str(env), "-f", str(DEPLOY / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    facility = config["services"]["facility"]["environment"]
    # the compose file wires the facility to its PostgreSQL and Redis
    assert facility["DATABASE_URL"].startswith("postgres://facility:change-me@127.0.0.1:5432/")
    assert facility["FACILITY_REDIS_URL"] == "redis://:change-me-too@127.0.0.1:6379/0"
    # a missing secret stops the file from being used at all
    env.write_text(env.read_text().replace("REDIS_PASSWORD=change-me-too", "REDIS_PASSWORD="))
    result = subprocess.run(
        [*command, "--env-file", str(env), "-f", str(DEPLOY / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr


# --- Kubernetes -----------------------------------------------------------------


def test_manifests_round_trip_through_the_kubernetes_models() -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api = kubernetes.client.ApiClient()
    kinds = set()
    for name, doc in manifests():
        key = (doc.get("apiVersion"), doc.get("kind"))
        assert key in MODELS, f"{name}: unexpected {key}"
        kinds.add(key[1])
        model = api._ApiClient__deserialize(doc, MODELS[key])  # client-side validation
        again = api.sanitize_for_serialization(model)
        assert again == doc, f"{name}: fields the {MODELS[key]} model does not know"
        assert doc["metadata"].get("namespace", "facility") == "facility", name
    assert kinds == {
        "Namespace",
        "Secret",
        "ConfigMap",
        "Service",
        "PersistentVolumeClaim",
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    }


def test_the_deployment_probes_volume_and_user() -> None:
    deployment = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    env_from = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert env_from == {
        by_kind("ConfigMap")["metadata"]["name"],
        by_kind("Secret")["metadata"]["name"],
    }
    (volume,) = pod["volumes"]
    assert (
        volume["persistentVolumeClaim"]["claimName"]
        == by_kind("PersistentVolumeClaim")["metadata"]["name"]
    )
    mount = container["volumeMounts"][0]
    assert mount["name"] == volume["name"]
    assert mount["mountPath"] == by_kind("ConfigMap")["data"]["FACILITY_DATA_DIR"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    # the Service reaches the container's named port, the selector matches
    service = by_kind("Service")
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    # PostgreSQL is an existing database, named in the Secret
    assert by_kind("Secret")["stringData"]["DATABASE_URL"].startswith("postgres://")
    # every ConfigMap key is a setting the facility reads
    from .test_settings_table import load_script

    read = load_script().settings_read_in_code()
    for key in by_kind("ConfigMap")["data"]:
        assert key in read, key


def test_the_facility_pod_may_run_ccp_workloads_in_the_cluster() -> None:
    """The configmap picks the kubernetes CCP backend; the pod's service account
    is bound to a role that grants what that backend calls."""
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    account = by_kind("ServiceAccount")["metadata"]
    assert pod["serviceAccountName"] == account["name"]
    assert by_kind("ConfigMap")["data"]["FACILITY_CCP_BACKEND"] == "kubernetes"
    binding = by_kind("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == by_kind("ClusterRole")["metadata"]["name"]
    assert {"kind": "ServiceAccount", "name": account["name"], "namespace": "facility"} in (
        binding["subjects"]
    )
    granted = {
        (group, resource, verb)
        for rule in by_kind("ClusterRole")["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        ("apps", "deployments", verb)
        for verb in ("get", "list", "create", "update", "patch", "delete")
    } | {
        ("", "pods", "list"),
        ("", "nodes", "list"),
        ("", "namespaces", "create"),
        ("metrics.k8s.io", "nodes", "list"),
    }
    assert needed <= granted, needed - granted


def test_kubectl_renders_the_kustomization_offline() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    # `kubectl apply --dry-run=client` needs an API server for discovery even
    # with --validate=false, so the offline check is kustomize's rendering.
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBE)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip(f"this kubectl has no kustomize: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert {doc["kind"] for doc in rendered} == {
        "Namespace",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    }
