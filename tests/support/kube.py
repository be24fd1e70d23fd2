"""A real Kubernetes control plane for the tests, on 127.0.0.1 only, plus the
test's SIMULATED KUBELET (there is no real kubelet, CNI or container image
registry on these machines).

Real: etcd (Debian's etcd-server), kube-apiserver, kube-controller-manager
and kube-scheduler v1.20.2, built once by scripts/ensure-kube.sh and cached
in ${FACILITY_KUBE_CACHE:-~/.cache/facility/kube}. They run on free ports
in a temporary folder, with a self-signed serving certificate (the apiserver
makes it), a static admin token and a kubeconfig written for the facility.

Simulated: `SimulatedKubelet` stands in for the kubelets of one or more
nodes. It registers the Nodes (capacity cpu/memory/pods and, where given,
the GPU extended resource; labels such as the XpuType one), keeps their
Ready heartbeat, and runs the pods the real scheduler binds to them as
Docker containers with host networking. Each pod gets its own loopback
address as PodIP (127.N.x.y; HostIP 127.0.0.1), so every pod's engine can
listen on the same containerPort, as in a cluster. It resolves env
fieldRefs (metadata.name, status.podIP, ...), applies cpu/memory limits,
runs the readiness probe (httpGet) on every sync pass, restarts ended
containers per restartPolicy after a fixed 1 s back-off (a real kubelet
backs off 10 s, 20 s, ...) counting restartCount, reports phase, IPs,
conditions and containerStatuses, and removes the containers of deleted
pods (confirming the deletion with grace 0). It never pulls: an image that
is not in the local Docker engine leaves the pod Pending with ErrImagePull.

Simulated too, and only when a test asks for it (`SimulatedKubelet.
serve_metrics()`): metrics-server. The metrics API group metrics.k8s.io/
v1beta1 is registered as a CustomResourceDefinition (`nodes`, kind
NodeMetrics) and the simulated kubelet writes one NodeMetrics per node
each pass: the summed cgroup (v1) CPU and memory use of that node's pod
containers. A client reads it at the same path as metrics-server's.

No binaries and no way to build them: the tests skip with the reason, and
fail with CI=true (as tests/support/docker.py does for Docker).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import socket
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker import REPO, in_ci, require_docker

KUBELET_LABEL = "facility-test.kubelet"
POD_UID_LABEL = "io.kubernetes.pod.uid"
POD_IP_LABEL = "facility-test.pod-ip"
POD_NODE_LABEL = "facility-test.node"
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
RESTART_BACKOFF_S = 1.0
HEARTBEAT_S = 10.0
METRICS_PERIOD_S = 1.0


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and no Kubernetes control plane: {reason}", pytrace=False)
    pytest.skip(f"no Kubernetes control plane: {reason}")


def kube_binaries(timeout: float = 1800) -> Path:
    """The folder of kube-apiserver & co. (scripts/ensure-kube.sh: cached,
    or built now), or skip/fail with the reason."""
    try:
        run = subprocess.run(
            [str(REPO / "scripts/ensure-kube.sh")],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        unavailable(f"scripts/ensure-kube.sh: {error}")
    if run.returncode != 0:
        print(run.stderr[-3000:])
        lines = run.stderr.strip().splitlines() or [f"exit status {run.returncode}"]
        unavailable(f"scripts/ensure-kube.sh: {lines[-1]}")
    folder = Path(run.stdout.strip().splitlines()[-1])
    if shutil.which("etcd") is None:
        unavailable("no etcd on PATH after scripts/ensure-kube.sh")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rfc3339(when: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(time.time() if when is None else when, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler."""

    workdir: Path
    bin_dir: Path
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    server: str = ""

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _wait(self, name: str, url: str, timeout: float, token: str = "") -> None:
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the components' own self-signed certificates
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        deadline = time.monotonic() + timeout
        while True:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready in {timeout:.0f} s:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def start(self, timeout: float = 90) -> None:
        w = self.workdir
        (w / "certs").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "genrsa", "-out", str(w / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(w / "sa.key"), "-pubout", "-out", str(w / "sa.pub")],
            check=True,
            capture_output=True,
        )
        (w / "tokens.csv").write_text(f"{self.token},admin,admin,system:masters\n")
        etcd_client, etcd_peer = free_port(), free_port()
        api_port, kcm_port, sched_port = free_port(), free_port(), free_port()
        self._spawn(
            "etcd",
            [
                "etcd",
                "--name=facility-test",
                f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=facility-test=http://127.0.0.1:{etcd_peer}",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", f"http://127.0.0.1:{etcd_client}/health", timeout)
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                f"--cert-dir={w / 'certs'}",
                f"--token-auth-file={w / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={w / 'sa.pub'}",
                f"--service-account-signing-key-file={w / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                # no token volumes: the simulated kubelet mounts nothing
                "--disable-admission-plugins=ServiceAccount",
            ],
        )
        self.server = f"https://127.0.0.1:{api_port}"
        self._wait("kube-apiserver", f"{self.server}/readyz", timeout, self.token)
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: facility-test\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority: {self.ca}\n"
            f"users:\n- name: admin\n  user:\n    token: {self.token}\n"
            "contexts:\n- name: facility-test\n  context:\n"
            "    cluster: facility-test\n    user: admin\n"
            "current-context: facility-test\n"
        )
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                "--port=0",
                f"--service-account-private-key-file={w / 'sa.key'}",
                f"--root-ca-file={self.ca}",
                "--use-service-account-credentials=false",
                "--allocate-node-cidrs=false",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                "--port=0",
            ],
        )
        self._wait("kube-controller-manager", f"https://127.0.0.1:{kcm_port}/healthz", timeout)
        self._wait("kube-scheduler", f"https://127.0.0.1:{sched_port}/healthz", timeout)

    def stop(self) -> None:
        # the reverse order of start; each by its own process handle
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)

    def api_client(self) -> Any:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)


@dataclass
class SimNode:
    name: str
    cpu: str = "8"
    memory: str = "16Gi"
    pods: str = "110"
    extended: dict[str, str] = field(default_factory=dict)  # e.g. {"nvidia.com/gpu": "2"}
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _PodState:
    ip: str
    restarts: int = 0
    last_terminated: dict[str, Any] | None = None
    started_at: float = 0.0
    reported: dict[str, Any] | None = None


class SimulatedKubelet:
    """The test's stand-in for the kubelets of `nodes` (see the module text)."""

    def __init__(self, api_client: Any, nodes: list[SimNode], interval_s: float = 0.3) -> None:
        import docker
        from kubernetes import client

        self.k = client
        self.core = client.CoreV1Api(api_client)
        self.docker = docker.from_env(version="auto")
        self.docker_errors = docker.errors
        self.nodes = nodes
        self.interval_s = interval_s
        self.id = secrets.token_hex(4)
        self._subnet = 100 + secrets.randbelow(100)  # 127.<subnet>.x.y for this kubelet's pods
        self._next_ip = 0
        self._pods: dict[str, _PodState] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-kubelet", daemon=True)
        self._last_heartbeat = 0.0
        self.errors: list[str] = []  # the kubelet's own failures: the tests fail on them
        self.transient: list[str] = []  # the cluster's or Docker's passing ones
        self._api_client = api_client
        self._metrics = False
        self._metrics_lock = threading.Lock()
        self._last_metrics = 0.0
        self._cpu_seen: dict[str, tuple[float, int]] = {}  # container id -> (when, ns used)

    # -- nodes -----------------------------------------------------------------------

    def _node_status(self, node: SimNode) -> dict[str, Any]:
        capacity = {"cpu": node.cpu, "memory": node.memory, "pods": node.pods, **node.extended}
        now = rfc3339()
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "the test's simulated kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "v1.20.2-simulated",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "docker://simulated",
                "bootID": "",
                "kernelVersion": "",
                "machineID": "",
                "osImage": "",
                "systemUUID": "",
            },
        }

    def register(self) -> None:
        for node in self.nodes:
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node.name,
                    "labels": {"kubernetes.io/hostname": node.name, **node.labels},
                },
            }
            with contextlib.suppress(self.k.exceptions.ApiException):
                self.core.create_node(body)
            self.core.patch_node_status(node.name, {"status": self._node_status(node)})
        self._last_heartbeat = time.monotonic()

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_S:
            return
        for node in self.nodes:
            self.core.patch_node_status(node.name, {"status": self._node_status(node)})
        self._last_heartbeat = time.monotonic()

    # -- the loop --------------------------------------------------------------------

    def start(self) -> None:
        self.register()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for container in self._containers():
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._heartbeat()
                self.sync()
            except Exception as error:  # kept for the tests to show; the loop goes on
                # a busy apiserver or engine (timeouts, 5xx, 409, 429) is retried
                # next pass, as a kubelet does; anything else is a bug to report
                kept = self.transient if self._transient(error) else self.errors
                kept.append(traceback.format_exc(limit=-4))
                del kept[:-20]
            self._stop.wait(self.interval_s)

    def _transient(self, error: Exception) -> bool:
        import urllib3

        status = getattr(error, "status", None)
        if isinstance(error, self.k.exceptions.ApiException):
            return status in (409, 429) or (status or 0) >= 500
        if isinstance(error, self.docker_errors.APIError):
            code = error.status_code or 0
            return code == 409 or code >= 500
        return isinstance(error, urllib3.exceptions.HTTPError | OSError)

    def _containers(self) -> list[Any]:
        return list(
            # ignore_removed: one removed between the listing and its inspect is gone
            self.docker.containers.list(
                all=True, filters={"label": f"{KUBELET_LABEL}={self.id}"}, ignore_removed=True
            )
        )

    def sync(self) -> None:
        containers = {c.labels.get(POD_UID_LABEL): c for c in self._containers()}
        seen = set()
        for node in self.nodes:
            found = self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node.name}"
            )
            for pod in found.items:
                seen.add(pod.metadata.uid)
                self._sync_pod(pod, containers.get(pod.metadata.uid))
        for uid, container in containers.items():
            if uid not in seen:  # its pod is gone
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                self._pods.pop(uid or "", None)
        with self._metrics_lock:  # stop_metrics() waits for a pass that is publishing
            if self._metrics and time.monotonic() - self._last_metrics >= METRICS_PERIOD_S:
                self._publish_metrics()
                self._last_metrics = time.monotonic()

    # -- the simulated metrics-server ------------------------------------------------

    def serve_metrics(self, timeout: float = 30) -> None:
        """Register metrics.k8s.io/v1beta1 `nodes` (a CRD) and publish
        NodeMetrics from now on; returns once the API serves them."""
        from kubernetes import client

        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": f"nodes.{METRICS_GROUP}",
                # *.k8s.io groups are reserved; the apiserver accepts this for tests
                "annotations": {
                    "api-approved.kubernetes.io": "unapproved, the facility's simulated "
                    "metrics-server (tests)"
                },
            },
            "spec": {
                "group": METRICS_GROUP,
                "scope": "Cluster",
                "names": {"plural": "nodes", "singular": "nodemetrics", "kind": "NodeMetrics"},
                "versions": [
                    {
                        "name": METRICS_VERSION,
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        extensions = client.ApiextensionsV1Api(self._api_client)
        with contextlib.suppress(client.exceptions.ApiException):
            extensions.create_custom_resource_definition(crd)
        custom = client.CustomObjectsApi(self._api_client)
        deadline = time.monotonic() + timeout
        while True:
            try:
                custom.list_cluster_custom_object(METRICS_GROUP, METRICS_VERSION, "nodes")
                break
            except client.exceptions.ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._metrics = True
        deadline = time.monotonic() + timeout
        while len(self.node_metrics()) < len(self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no NodeMetrics published: {self.errors}")
            time.sleep(0.2)

    def stop_metrics(self) -> None:
        from kubernetes import client

        with self._metrics_lock:
            self._metrics = False
        extensions = client.ApiextensionsV1Api(self._api_client)
        with contextlib.suppress(client.exceptions.ApiException):
            extensions.delete_custom_resource_definition(f"nodes.{METRICS_GROUP}")

    def node_metrics(self) -> dict[str, dict[str, Any]]:
        from kubernetes import client

        custom = client.CustomObjectsApi(self._api_client)
        found = custom.list_cluster_custom_object(METRICS_GROUP, METRICS_VERSION, "nodes")
        return {item["metadata"]["name"]: item for item in found.get("items") or []}

    @staticmethod
    def _cgroup(controller: str, container_id: str, name: str) -> int:
        path = Path("/sys/fs/cgroup") / controller / "docker" / container_id / name
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def _publish_metrics(self) -> None:
        from kubernetes import client

        custom = client.CustomObjectsApi(self._api_client)
        now = time.monotonic()
        use = {node.name: [0.0, 0] for node in self.nodes}  # cores, bytes
        for container in self._containers():
            node = container.labels.get(POD_NODE_LABEL)
            if node not in use or container.status != "running":
                continue
            used_ns = self._cgroup("cpuacct", container.id, "cpuacct.usage")
            before = self._cpu_seen.get(container.id)
            self._cpu_seen[container.id] = (now, used_ns)
            if before and now > before[0]:
                use[node][0] += max(0, used_ns - before[1]) / 1e9 / (now - before[0])
            use[node][1] += self._cgroup("memory", container.id, "memory.usage_in_bytes")
        existing = self.node_metrics()
        for name, (cores, memory) in use.items():
            body = {
                "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                "kind": "NodeMetrics",
                "metadata": {"name": name},
                "timestamp": rfc3339(),
                "window": f"{METRICS_PERIOD_S:.0f}s",
                "usage": {"cpu": f"{int(cores * 1e9)}n", "memory": f"{memory // 1024}Ki"},
            }
            if name in existing:
                body["metadata"]["resourceVersion"] = existing[name]["metadata"]["resourceVersion"]
                custom.replace_cluster_custom_object(
                    METRICS_GROUP, METRICS_VERSION, "nodes", name, body
                )
            else:
                custom.create_cluster_custom_object(METRICS_GROUP, METRICS_VERSION, "nodes", body)

    def _allocate_ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"127.{self._subnet}.{n // 250}.{n % 250 + 2}"

    def _env(self, pod: Any, container: Any, ip: str) -> dict[str, str]:
        fields = {
            "metadata.name": pod.metadata.name,
            "metadata.namespace": pod.metadata.namespace,
            "metadata.uid": pod.metadata.uid,
            "spec.nodeName": pod.spec.node_name,
            "status.podIP": ip,
            "status.hostIP": "127.0.0.1",
        }
        env = {}
        for item in container.env or []:
            if item.value_from is None:
                env[item.name] = item.value or ""
            elif item.value_from.field_ref is not None:
                path = item.value_from.field_ref.field_path
                if path not in fields:
                    raise ValueError(f"env {item.name}: fieldRef {path} is not simulated")
                env[item.name] = fields[path]
            else:
                raise ValueError(f"env {item.name}: only values and fieldRefs are simulated")
        return env

    def _run_container(self, pod: Any, state: _PodState) -> None:
        spec = pod.spec.containers[0]
        limits = (spec.resources.limits if spec.resources else None) or {}
        from ccp.backends.kubernetes import quantity

        nano_cpus = int(quantity(limits.get("cpu")) * 1e9) or None
        memory = int(quantity(limits.get("memory"))) or None
        self.docker.containers.run(
            spec.image,
            command=spec.args or None,
            entrypoint=spec.command or None,
            environment=self._env(pod, spec, state.ip),
            name=f"k8s_{spec.name}_{pod.metadata.name}_{pod.metadata.namespace}_{self.id}",
            labels={
                KUBELET_LABEL: self.id,
                POD_UID_LABEL: pod.metadata.uid,
                POD_IP_LABEL: state.ip,
                POD_NODE_LABEL: pod.spec.node_name,
                "io.kubernetes.pod.name": pod.metadata.name,
                "io.kubernetes.pod.namespace": pod.metadata.namespace,
            },
            network_mode="host",
            nano_cpus=nano_cpus,
            mem_limit=memory,
            init=True,
            detach=True,
        )
        state.started_at = time.time()

    def _probe(self, pod: Any, state: _PodState) -> bool:
        probe = pod.spec.containers[0].readiness_probe
        if probe is None or probe.http_get is None:
            return True
        port = probe.http_get.port
        url = f"http://{state.ip}:{port}{probe.http_get.path or '/'}"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return 200 <= answer.status < 400
        except (OSError, urllib.error.URLError):
            return False

    def _sync_pod(self, pod: Any, container: Any) -> None:
        uid = pod.metadata.uid
        if pod.metadata.deletion_timestamp is not None:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
            # confirm the deletion (a kubelet's job), else the pod waits out its grace period
            with contextlib.suppress(self.k.exceptions.ApiException):
                self.core.delete_namespaced_pod(
                    pod.metadata.name,
                    pod.metadata.namespace,
                    grace_period_seconds=0,
                    body=self.k.V1DeleteOptions(
                        grace_period_seconds=0, preconditions=self.k.V1Preconditions(uid=uid)
                    ),
                )
            self._pods.pop(uid, None)
            return
        if pod.status.phase in ("Succeeded", "Failed"):
            return
        spec = pod.spec.containers[0]
        state = self._pods.get(uid)
        if state is None:
            ip = container.labels.get(POD_IP_LABEL) if container is not None else None
            state = self._pods[uid] = _PodState(ip=ip or self._allocate_ip())
        waiting: dict[str, str] | None = None
        running: dict[str, Any] | None = None
        terminated: dict[str, Any] | None = None
        if container is None:
            try:
                self.docker.images.get(spec.image)
            except self.docker_errors.ImageNotFound:
                waiting = {
                    "reason": "ErrImagePull",
                    "message": f"the test's simulated kubelet does not pull: {spec.image} is "
                    "not in the local Docker engine",
                }
            else:
                try:
                    if state.started_at:  # its container vanished: a new one is a restart
                        state.restarts += 1
                    self._run_container(pod, state)
                    running = {"startedAt": rfc3339(state.started_at)}
                except (ValueError, self.docker_errors.APIError) as error:
                    waiting = {"reason": "CreateContainerError", "message": str(error)[:500]}
        else:
            try:
                container.reload()
            except self.docker_errors.NotFound:
                return  # removed meanwhile: the next pass sees the pod without it
            if container.status == "running":
                running = {"startedAt": rfc3339(state.started_at or time.time())}
            else:
                code = int(container.attrs["State"].get("ExitCode") or 0)
                oom = bool(container.attrs["State"].get("OOMKilled"))
                ended = {
                    "exitCode": code,
                    "reason": "OOMKilled" if oom else ("Completed" if code == 0 else "Error"),
                    "startedAt": rfc3339(state.started_at or time.time()),
                    "finishedAt": rfc3339(),
                    "containerID": f"docker://{container.id}",
                }
                policy = pod.spec.restart_policy or "Always"
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    if state.last_terminated is None or state.last_terminated.get("_id") != (
                        container.attrs["State"].get("FinishedAt")
                    ):
                        state.last_terminated = {
                            **ended,
                            "_id": container.attrs["State"].get("FinishedAt"),
                            "_at": time.monotonic(),
                        }
                    if time.monotonic() - state.last_terminated["_at"] >= RESTART_BACKOFF_S:
                        container.start()
                        state.restarts += 1
                        state.started_at = time.time()
                        running = {"startedAt": rfc3339(state.started_at)}
                    else:
                        waiting = {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off {RESTART_BACKOFF_S:.0f}s restarting failed "
                            f"container={spec.name} pod={pod.metadata.name}",
                        }
                else:
                    terminated = ended
        ready = running is not None and self._probe(pod, state)
        if terminated is not None:
            phase = "Succeeded" if terminated["exitCode"] == 0 else "Failed"
        elif running is not None or (waiting and waiting["reason"] == "CrashLoopBackOff"):
            phase = "Running"
        else:
            phase = "Pending"
        state_doc: dict[str, Any] = {}
        if running is not None:
            state_doc["running"] = running
        elif terminated is not None:
            state_doc["terminated"] = terminated
        else:
            state_doc["waiting"] = waiting or {"reason": "ContainerCreating"}
        last = state.last_terminated if state.restarts else None
        container_status = {
            "name": spec.name,
            "image": spec.image,
            "imageID": "",
            "containerID": f"docker://{container.id}" if container is not None else None,
            "ready": ready,
            "started": running is not None,
            "restartCount": state.restarts,
            "state": state_doc,
            "lastState": (
                {"terminated": {k: v for k, v in last.items() if not k.startswith("_")}}
                if last
                else {}
            ),
        }
        report = {
            "phase": phase,
            "ready": ready,
            "started": running is not None,
            "restarts": state.restarts,
            "state": sorted(state_doc),
            "waiting": (waiting or {}).get("reason"),
        }
        if report == state.reported:
            return
        now = rfc3339()
        ready_text = "True" if ready else "False"
        conditions = [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": now},
            {"type": "Ready", "status": ready_text, "lastTransitionTime": now},
        ]
        body = {
            "status": {
                "phase": phase,
                "hostIP": "127.0.0.1",
                "podIP": state.ip,
                "podIPs": [{"ip": state.ip}],
                "startTime": pod.status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
                if pod.status.start_time
                else now,
                "conditions": conditions,
                "containerStatuses": [container_status],
            }
        }
        try:
            self.core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, body)
        except self.k.exceptions.ApiException as error:
            if error.status != 404:
                raise
            return
        state.reported = report


@dataclass
class Cluster:
    control_plane: ControlPlane
    kubelet: SimulatedKubelet
    nodes: list[SimNode]


@contextlib.contextmanager
def running_cluster(workdir: Path, nodes: list[SimNode]) -> Iterator[Cluster]:
    """A control plane and the simulated kubelet of `nodes`, for a test session;
    every process and container is gone afterwards."""
    require_docker()
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        unavailable("the `kubernetes` client is not installed (requirements.txt)")
    bin_dir = kube_binaries()
    plane = ControlPlane(workdir=workdir, bin_dir=bin_dir)
    kubelet: SimulatedKubelet | None = None
    try:
        try:
            plane.start()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
            unavailable(f"the control plane did not start: {error}")
        kubelet = SimulatedKubelet(plane.api_client(), nodes)
        kubelet.start()
        yield Cluster(plane, kubelet, nodes)
    finally:
        if kubelet is not None:
            kubelet.stop()
        plane.stop()
