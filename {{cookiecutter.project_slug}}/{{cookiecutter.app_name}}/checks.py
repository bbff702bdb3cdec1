"""System checks for the task queue settings, registered by apps.py.

They run with every management command, so they keep guarding the settings after
the project has been edited. docs/tasks.md lists them.
https://docs.djangoproject.com/en/5.2/topics/checks/
"""

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
            id="{{ cookiecutter.app_name }}.E001",
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
            id="{{ cookiecutter.app_name }}.W001",
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
            id="{{ cookiecutter.app_name }}.W002",
        )
    ]
