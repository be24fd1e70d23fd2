from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from facility import health
from facility.metrics import metrics_view

admin.site.site_header = _("Central video-analysis facility")
admin.site.site_title = _("Facility admin")
admin.site.index_title = _("Operations")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("compute.dashboard.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("algorithms.api.urls")),
    path("", include("compute.api.urls")),
    path("", include("services.api.urls")),
    path("", include("tasks.api.urls")),
    path("", include("ccp.api.urls")),
]

handler400 = "facility.api.errors.handler400"
handler404 = "facility.api.errors.handler404"
handler500 = "facility.api.errors.handler500"
