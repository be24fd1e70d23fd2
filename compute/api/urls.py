from compute.api import views
from facility.api.routing import uri

urlpatterns = [
    uri("CAD/Status", views.CadStatusView.as_view(), "cad-status"),
    uri("CAP/Status", views.CapStatusView.as_view(), "cap-status"),
    uri(
        "CCP/Cluster/Monitors/{ClusterCode}",
        views.ClusterMonitorView.as_view(),
        "ccp-cluster-monitor",
    ),
    uri("CCP/Node/Monitors/{NodeID}", views.NodeMonitorView.as_view(), "ccp-node-monitor"),
    uri("api/compute/nodes", views.NodesView.as_view(), "compute-nodes"),
    uri("api/compute/nodes/{NodeID}", views.NodeView.as_view(), "compute-node"),
    uri(
        "api/compute/nodes/{NodeID}/samples",
        views.NodeSamplesView.as_view(),
        "compute-node-samples",
    ),
]
