"""URL configuration for {{ cookiecutter.project_name }}."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
