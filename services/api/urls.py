from facility.api.routing import uri
from services.api import views

urlpatterns = [
    uri("CAP/AlgoServices", views.CapServicesView.as_view(), "cap-services"),
    uri("CAP/AlgoServices:search", views.CapServiceSearchView.as_view(), "cap-services-search"),
    uri("CAP/AlgoServices/{id}", views.CapServiceView.as_view(), "cap-service"),
    uri("CAD/Machine/AlgoPackages", views.CadMachinePackagesView.as_view(), "cad-machine-packages"),
    uri(
        "CAD/Machine/AlgoPackages/{id}",
        views.CadMachinePackageView.as_view(),
        "cad-machine-package",
    ),
]
