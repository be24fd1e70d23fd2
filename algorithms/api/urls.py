from algorithms.api import views
from facility.api.routing import uri

urlpatterns = [
    uri("CAP/AlgoFilePackages", views.CapPackagesView.as_view(), "cap-packages"),
    uri("CAP/AlgoFilePackages:search", views.CapPackageSearchView.as_view(), "cap-packages-search"),
    uri(
        "CAP/AlgoFilePackages:pushExecFile",
        views.CapPackageExecFileView.as_view(),
        "cap-packages-push-exec-file",
    ),
    uri("CAP/AlgoFilePackages/{id}", views.CapPackageView.as_view(), "cap-package"),
    uri("CAD/Machine/AlgoFilePackages", views.CadPackagesView.as_view(), "cad-packages"),
    uri("CAD/Machine/AlgoFilePackages/{id}", views.CadPackageView.as_view(), "cad-package"),
]
