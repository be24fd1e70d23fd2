from django.urls import path

from compute.dashboard import views

urlpatterns = [
    path("compute/", views.compute_dashboard, name="compute-dashboard"),
]
