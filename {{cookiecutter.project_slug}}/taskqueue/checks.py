"""System checks for the task queue settings, registered by apps.py.

They run with every management command, so they keep guarding the settings after
the project has been edited. docs/tasks.md lists them.
https://docs.djangoproject.com/en/{{ cookiecutter.django_version }}/topics/checks/
"""

import math
import os

from django.conf import settings
from django.core.checks import Error, Warning


def check_retry_exceeds_timeout(app_configs, **kwargs):
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    timeout = q_cluster.get("timeout")
    retry = q_cluster.get("retry", 60)
    if timeout is not None and retry > timeout:
        return []
    return [
        Error(
            f"Q_CLUSTER retry ({retry} s) must be greater than timeout ({timeout} s).",
            hint="A task still running when retry expires is delivered again and runs "
            "twice. Set a timeout, and a retry above it.",
            id="taskqueue.E001",
        )
    ]


def check_sync_off_in_production(app_configs, **kwargs):
    if settings.DEBUG or not getattr(settings, "Q_CLUSTER", {}).get("sync"):
        return []
    return [
        Warning(
            "Q_CLUSTER sync is on while DEBUG is off: every task runs inside the "
            "request that enqueued it.",
            hint="Remove 'sync' from Q_CLUSTER; use async_task(..., sync=True) in tests.",
            id="taskqueue.W001",
        )
    ]


def check_failure_policy(app_configs, **kwargs):
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    if not (q_cluster.get("ack_failures") and q_cluster.get("max_attempts", 0) != 1):
        return []
    return [
        Warning(
            "Q_CLUSTER ack_failures is on, so a failed task is never retried and "
            "max_attempts has no effect.",
            hint="Set 'ack_failures': False to retry failed tasks up to max_attempts.",
            id="taskqueue.W002",
        )
    ]


def safe_retry(timeout, queue_limit, workers, bulk=1):
    """The smallest retry with which no task is delivered again while a cluster holds it.

    A task the cluster took waits in memory behind up to queue_limit others (and the
    pusher's bulk), `workers` at a time, each for up to timeout seconds (+ 5: the guard
    kills a task 3 s late and replaces its worker), then runs for as long.
    """
    rounds = math.ceil((queue_limit + bulk) / workers) + 1
    return rounds * (timeout + 5)


def check_retry_covers_the_tasks_held(app_configs, **kwargs):
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    timeout = q_cluster.get("timeout")
    if not q_cluster.get("orm") or timeout is None:
        return []
    workers = q_cluster.get("workers") or os.cpu_count() or 1
    queue_limit = q_cluster.get("queue_limit", workers**2)
    retry = q_cluster.get("retry", 60)
    needed = safe_retry(timeout, queue_limit, workers, q_cluster.get("bulk", 1))
    if retry >= needed:
        return []
    return [
        Error(
            f"Q_CLUSTER retry ({retry} s) is too short for timeout {timeout} s, "
            f"queue_limit {queue_limit} and {workers} workers: it must be at least {needed} s.",
            hint="A task that waits in the cluster's memory longer than retry is delivered "
            "again and runs twice. Raise retry, or lower queue_limit or timeout "
            "(docs/tasks.md).",
            id="taskqueue.E002",
        )
    ]
