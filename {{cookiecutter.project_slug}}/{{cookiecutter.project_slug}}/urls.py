"""URL configuration for {{ cookiecutter.project_name }}."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # /health/, for load balancers and uptime monitors: docs/operations.md.
    path("", include("taskqueue.urls")),
]
