"""The ccp app's settings, each read with a default. facility/settings.py sets
each from the environment variable FACILITY_<name> (e.g. FACILITY_CCP_BACKEND);
a settings module of one's own may override them.

CCP_BACKEND                "docker" (default) or "kubernetes"
CCP_ENGINE_STORE           folder for downloaded engine files (default DATA_DIR/ccp)
CCP_REGISTRY_AUTH          {"registry host[:port]": {"username": .., "password": ..}}
                           credentials for pulling image references (FileType Engine)
CCP_PULL_REGISTRIES        registries image references may be pulled from: a list of
                           hosts ("host" or "host:port"), "*" for any; by default only
                           loopback ones (127.0.0.1, localhost, [::1]) and those of
                           CCP_REGISTRY_AUTH, so nothing is fetched from a public registry
                           unless the operator says so
CCP_DOCKER_HOST_IP         HostIP / PodIP of docker pods (host networking; 127.0.0.1)
CCP_DOCKER_NODE_NAME       NodeName of docker pods (default: the host name)
CCP_DOCKER_XPU_DEVICES     {"NVIDIA_T4": ["0", "1"]}: the cards of each XpuType on the
                           Docker node; a workload with Xpu > 0 of a type not listed
                           cannot be placed (its pods stay Pending)
CCP_HEALTH_TIMEOUT_S       the /Health probe of a pod (Ready)
CCP_KUBE_CONFIG            kubeconfig path for the kubernetes backend ("" = in-cluster,
                           then ~/.kube/config)
CCP_KUBE_CONTEXT           kubeconfig context
CCP_KUBE_XPU_RESOURCE      the extended resource a card is requested as (nvidia.com/gpu)
CCP_KUBE_XPU_NODE_LABEL    the node label XpuType selects on
CCP_ENGINE_PORT            the engine port of kubernetes pods (containerPort, ENGINE_PORT)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings


def setting(name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


def backend_name() -> str:
    return str(setting("CCP_BACKEND", "docker"))


def engine_store() -> Path:
    return Path(setting("CCP_ENGINE_STORE", Path(settings.DATA_DIR) / "ccp"))


def registry_auth() -> dict[str, dict[str, str]]:
    return dict(setting("CCP_REGISTRY_AUTH", {}))


def pull_allowed(registry: str) -> bool:
    allowed = [str(item) for item in setting("CCP_PULL_REGISTRIES", [])]
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    if "*" in allowed or registry in allowed or host in allowed:
        return True
    if registry in registry_auth():
        return True
    return host in ("127.0.0.1", "localhost", "[::1]")


def docker_host_ip() -> str:
    return str(setting("CCP_DOCKER_HOST_IP", "127.0.0.1"))


def docker_node_name() -> str:
    import socket

    return str(setting("CCP_DOCKER_NODE_NAME", "") or socket.gethostname())


def docker_xpu_devices() -> dict[str, list[str]]:
    return {str(k): [str(d) for d in v] for k, v in setting("CCP_DOCKER_XPU_DEVICES", {}).items()}


def health_timeout_s() -> float:
    return float(setting("CCP_HEALTH_TIMEOUT_S", 1.0))


def kube_config() -> str:
    return str(setting("CCP_KUBE_CONFIG", ""))


def kube_context() -> str:
    return str(setting("CCP_KUBE_CONTEXT", ""))


def kube_xpu_resource() -> str:
    return str(setting("CCP_KUBE_XPU_RESOURCE", "nvidia.com/gpu"))


def kube_xpu_node_label() -> str:
    return str(setting("CCP_KUBE_XPU_NODE_LABEL", "facility/xpu-type"))


def engine_port() -> int:
    return int(setting("CCP_ENGINE_PORT", 8750))
