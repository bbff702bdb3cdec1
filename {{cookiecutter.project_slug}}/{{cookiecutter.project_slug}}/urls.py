"""URL configuration for {{ cookiecutter.project_name }}."""

from django.contrib import admin
from django.urls import path

from {{ cookiecutter.app_name }}.views import health

urlpatterns = [
    path("admin/", admin.site.urls),
    # For load balancers and uptime monitors: docs/operations.md.
    path("health/", health, name="health"),
]
