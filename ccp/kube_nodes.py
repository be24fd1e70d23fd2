"""The Kubernetes cluster's nodes in the monitors (表16, 表17).

With CCP_BACKEND=kubernetes and a cluster that serves the metrics API
(metrics.k8s.io, i.e. metrics-server), every pass of the `ccp` loop records
each cluster node as a node of the facility's cluster (FACILITY_CLUSTER_CODE)
with its capacity (cores, memory) and use (CPU utilisation, memory used)
through the compute app's own recording path, so /CCP/Cluster/Monitors and
/CCP/Node/Monitors report the cluster. Without a metrics API nothing is
recorded and the monitors answer from the facility's own samples (its host,
remote agents) as before.

A cluster node whose name is already taken by the facility's own node or by
an agent-reported node is left out (one source per node)."""

from __future__ import annotations

import logging

from django.conf import settings

from ccp import conf
from ccp.backends import get_backend
from ccp.backends.base import BackendError

log = logging.getLogger(__name__)


def sample() -> int:
    """One reading per cluster node; how many were recorded (0 when the
    backend is not kubernetes or the cluster has no metrics API)."""
    if conf.backend_name() != "kubernetes":
        return 0
    from compute.actions import create_node, record_reading
    from compute.models import Node
    from compute.probes import Reading

    try:
        backend = get_backend("kubernetes")
        usage = getattr(backend, "node_usage", lambda: None)()
    except BackendError as error:
        log.warning("kubernetes node metrics: %s", error)
        return 0
    if usage is None:
        return 0
    recorded = 0
    for item in usage:
        node = Node.objects.filter(name=item.name).first()
        if node is None:
            node = create_node(
                name=item.name,
                cluster_code=settings.FACILITY_CLUSTER_CODE,
                ip=item.ip,
                hostname=item.name,
                cpu_cores=round(item.cpu_cores),
                memory_gb=item.memory_bytes / 2**30,
            )
        elif node.is_local or node.agent_client_id is not None:
            continue
        reading = Reading(
            hostname=item.name,
            ip=item.ip,
            cpu_cores=round(item.cpu_cores),
            memory_gb=item.memory_bytes / 2**30,
            cpu_utilization=(item.cpu_used_cores / item.cpu_cores) if item.cpu_cores else None,
            memory_used_gb=item.memory_used_bytes / 2**30,
            xpu_note="a Kubernetes node: cards are not sampled through the metrics API",
        )
        record_reading(node, reading)
        recorded += 1
    return recorded
