"""/metrics: the task queue in Prometheus' text format (docs/operations.md).

Off until METRICS_TOKEN is set; a scrape then sends "Authorization: Bearer <token>"
(401 without it, 403 with another one), as the metrics name the tasks.

Two kinds of values:
- Read at each scrape (QueueCollector): the tasks queued and the age of the oldest,
  the retries waiting, the tasks each cluster holds, the clusters and workers alive,
  and the age of the last saved result. Each is one indexed query (or a Redis
  command); none reads the payload of a queued task.
- Counted as results are saved (count_result, in each cluster's monitor): results by
  task and outcome, and how long each attempt ran. They are prometheus-client's
  multiprocess values: files in METRICS_DIR, which the web server reads. So a web
  server reports the clusters of its own machine (or volume), and their counts start
  from 0 again when a cluster restarts, which Prometheus' rate() and increase() expect.
"""

import hmac
import os
import socket
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task
from django_q.signals import post_execute, pre_execute

from .backend import broker
from .health import alive_clusters
from .models import ScheduledRetry
from .retries import path_of

# When the attempt began, added to the task by its worker (the package's "started" is
# when the task was enqueued).
STARTED_KEY = "attempt_started"
# Attempt durations, in seconds, from a quick task to the longest timeouts.
BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
OUTCOMES = ("success", "retried", "failed")

# The counters, made by enable().
_counted = {}


def enabled():
    return bool(settings.METRICS_TOKEN)


def process_id():
    """Names this process's files in METRICS_DIR: the host too, as clusters in
    containers that share the directory may have the same pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def enable():
    """With METRICS_TOKEN set (apps.py): count results in METRICS_DIR's files."""
    if not enabled() or _counted:
        return
    directory = Path(settings.METRICS_DIR)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"DJANGO_METRICS_DIR {directory} cannot be created ({exc}): the clusters count "
            "results there for /metrics; point it at a directory this user can write."
        ) from exc
    # Read by prometheus-client when a process writes its first value.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import Counter, Histogram, values

    values.ValueClass = values.MultiProcessValue(process_id)
    remove_files_of_dead_processes(directory)
    _counted["results"] = Counter(
        "taskqueue_results",
        "Results saved, by task and outcome: success, retried (a failed attempt to be "
        "retried) or failed (for good).",
        ["queue", "host", "func", "outcome"],
        registry=None,
    )
    _counted["duration"] = Histogram(
        "taskqueue_task_duration_seconds",
        "How long each attempt of a task ran, from its start in a worker to its result.",
        ["queue", "host", "func"],
        buckets=BUCKETS,
        registry=None,
    )
    pre_execute.connect(note_start, dispatch_uid="metrics_note_start")
    post_execute.connect(count_result, dispatch_uid="metrics_count_result")


def remove_files_of_dead_processes(directory):
    """Delete the files of this host's processes that have ended (a restarted cluster),
    so that a scrape reads one file per live process, not one per restart."""
    host = socket.gethostname()
    for path in directory.glob(f"*_{host}-*.db"):
        pid = path.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            path.unlink(missing_ok=True)


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def note_start(sender, func, task, **kwargs):
    """Receiver of pre_execute (in the worker): when this attempt began."""
    task[STARTED_KEY] = timezone.now()


def outcome_of(task):
    if task["success"]:
        return "success"
    return "retried" if task.get("retry_at") else "failed"


def count_result(sender, task, **kwargs):
    """Receiver of post_execute (in the monitor, once the result is saved)."""
    labels = (Conf.CLUSTER_NAME, socket.gethostname(), path_of(task["func"]))
    _counted["results"].labels(*labels, outcome_of(task)).inc()
    started = task.get(STARTED_KEY)
    if started is not None and task.get("stopped") is not None:
        duration = (task["stopped"] - started).total_seconds()
        _counted["duration"].labels(*labels).observe(max(duration, 0))


def authorized(request):
    """The status that refuses a scrape (401: no bearer token, 403: another one), or
    None when it may read the metrics."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return 401
    if not hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode()):
        return 403
    return None


def exposition():
    """(body, content type) of a scrape: the counted values, then the queue's."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    registry.register(QueueCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class QueueCollector:
    """The values read at each scrape, from the database and the broker."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        now = timezone.now()
        queue = Conf.CLUSTER_NAME
        state = broker().queue_state(now)

        def gauge(name, documentation, labels=("queue",)):
            return GaugeMetricFamily(name, documentation, labels=list(labels))

        queued = gauge("taskqueue_queued_tasks", "Tasks waiting for a cluster to take them.")
        queued.add_metric([queue], state["queued"])
        yield queued
        oldest = gauge(
            "taskqueue_oldest_queued_task_age_seconds",
            "How long the oldest waiting task has waited (0 when none waits).",
        )
        oldest.add_metric([queue], age(now, state["oldest"]))
        yield oldest
        retries = gauge("taskqueue_retries_waiting", "Failed tasks waiting for their retry.")
        retries.add_metric([queue], ScheduledRetry.objects.filter(due_at__gt=now).count())
        yield retries

        clusters = alive_clusters()
        alive = gauge("taskqueue_clusters_alive", "Clusters that reported in the last seconds.")
        alive.add_metric([queue], len(clusters))
        yield alive
        labels = ("queue", "cluster", "host")
        workers = gauge("taskqueue_workers_alive", "Worker processes of each cluster.", labels)
        held = gauge(
            "taskqueue_held_tasks",
            "Tasks a cluster has taken and not finished (with Redis: those waiting in its "
            "memory or for its monitor, not those running).",
            labels,
        )
        held_by = state["held_by_pusher"]
        for stat in clusters:
            key = [queue, str(stat.cluster_id), stat.host]
            workers.add_metric(key, len(stat.workers))
            if held_by is None:
                held.add_metric(key, stat.task_q_size + stat.done_q_size)
            else:
                held.add_metric(key, held_by.pop(f"{stat.host}:{stat.pusher}", 0))
        if held_by:  # claims of clusters no longer alive, until they expire
            held.add_metric([queue, "none", "none"], sum(held_by.values()))
        yield workers
        yield held

        last = Task.objects.filter(cluster=queue).aggregate(last=Max("stopped"))["last"]
        if last is not None:
            result = gauge(
                "taskqueue_last_result_age_seconds", "Seconds since a result was last saved."
            )
            result.add_metric([queue], age(now, last))
            yield result


def age(now, moment):
    return max((now - moment).total_seconds(), 0) if moment is not None else 0
