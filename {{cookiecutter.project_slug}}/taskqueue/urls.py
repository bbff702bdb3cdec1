from django.urls import path

from .views import health, metrics

urlpatterns = [
    path("health/", health, name="health"),
    # Prometheus' default path, without a slash: off unless METRICS_TOKEN is set.
    path("metrics", metrics, name="metrics"),
]
