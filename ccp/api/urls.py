from ccp.api import views
from facility.api.routing import uri

urlpatterns = [
    uri("CCP/AlgoService/Engines", views.EnginesView.as_view(), "ccp-engines"),
    uri("CCP/AlgoService/Engines/{id}", views.EngineView.as_view(), "ccp-engine"),
    uri("CCP/AlgoService/Workloads", views.WorkloadsView.as_view(), "ccp-workloads"),
    uri(
        "CCP/AlgoService/Workloads/{name}:delete",
        views.WorkloadDeleteView.as_view(),
        "ccp-workload-delete",
    ),
    uri("CCP/AlgoService/Workloads/{name}", views.WorkloadView.as_view(), "ccp-workload"),
    uri("CCP/AlgoService/Pods", views.PodsView.as_view(), "ccp-pods"),
    uri("CCP/AlgoService/Pods/{name}", views.PodView.as_view(), "ccp-pod"),
]
