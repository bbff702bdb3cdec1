import logging

from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import metrics as queue_metrics
from .health import cluster_state, database_problem

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request):
    """For a load balancer or an uptime monitor: 200 when the database takes a write and
    a task cluster is alive, 503 otherwise. No login; the body names the failing check,
    not why (the reason goes to the log)."""
    problems = {"database": database_problem(), "cluster": cluster_state()[1]}
    for name, problem in problems.items():
        if problem:
            logger.warning("health check %s failing: %s", name, problem)
    healthy = not any(problems.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: "failing" if problem else "ok" for name, problem in problems.items()},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def metrics(request):
    """For Prometheus: the queue's metrics (metrics.py), to a request that brings the
    bearer token METRICS_TOKEN; 404 when it is not set."""
    if not queue_metrics.enabled():
        raise Http404("metrics are off: set DJANGO_METRICS_TOKEN")
    refused = queue_metrics.authorized(request)
    if refused:
        response = HttpResponse(status=refused)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = queue_metrics.exposition()
    return HttpResponse(body, content_type=content_type)
