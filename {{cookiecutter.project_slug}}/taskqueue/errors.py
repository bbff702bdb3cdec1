"""Error reports to Sentry (or a service that speaks its protocol), when SENTRY_DSN is set.

apps.py calls enable(): sentry-sdk with its Django integration, for the web server's
errors and the cluster's, and django-q2's error reporter hook for tasks. A worker
reports each attempt that raises (or times out) once, from inside the worker, with the
task's name, id, function, attempt and attempts; the cluster's own log line for that
failure is not sent again. A worker that dies reports nothing itself: the pusher's
"attempt N of M ended without a result" error is sent instead (brokers/orm.py).

A task's arguments are not sent: the local variables of the frames of a task's
traceback (its arguments among them) are removed, unless SENTRY_SEND_TASK_ARGUMENTS
is on, which sends both. docs/operations.md shows how to try it.
"""

import logging
import sys

from django.conf import settings
from django_q import worker
from django_q.conf import Conf
from django_q.signals import pre_execute

from .retries import path_of, policy_for

# How long a worker waits for its report to be sent before it takes its next task (or
# is recycled, which would drop a report not sent yet).
FLUSH_SECONDS = 2
TASK_TAG = "task.func"

# The task the worker of this process runs (note_task).
_running = {}
logger = logging.getLogger("django-q")


def enable():
    """With SENTRY_DSN set: start sentry-sdk, and report the tasks that raise."""
    if not settings.SENTRY_DSN:
        return
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=settings.SENTRY_DSN,
        integrations=[DjangoIntegration()],
        send_default_pii=False,
        before_send=before_send,
    )
    worker.error_reporter = TaskErrorReporter()
    pre_execute.connect(note_task, dispatch_uid="errors_note_task")


def note_task(sender, func, task, **kwargs):
    """Receiver of pre_execute (in the worker): the task the next report is about."""
    _running["task"] = task


class TaskErrorReporter:
    """django-q2's worker calls report() in the `except` of the task that raised."""

    def report(self):
        """Report the exception being handled; never raise (the worker would die)."""
        try:
            self.send(sys.exc_info()[1], _running.pop("task", None) or {})
        except Exception:
            logger.exception("The task's error could not be reported to Sentry")

    def send(self, exception, task):
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            func = path_of(task.get("func", ""))
            scope.set_tag(TASK_TAG, func)
            scope.set_tag("task.name", task.get("name"))
            scope.set_tag("task.attempt", task.get("attempt", 1))
            scope.set_tag("queue", Conf.CLUSTER_NAME)
            context = {
                "id": task.get("id"),
                "name": task.get("name"),
                "func": func,
                "attempt": task.get("attempt", 1),
                "attempts": policy_for(func).attempts if func else None,
            }
            if settings.SENTRY_SEND_TASK_ARGUMENTS:
                context["args"] = repr(task.get("args"))
                context["kwargs"] = repr(task.get("kwargs"))
            scope.set_context("task", context)
            sentry_sdk.capture_exception(exception)
        sentry_sdk.flush(timeout=FLUSH_SECONDS)


def before_send(event, hint):
    """Drop the monitor's log line of a failure the worker reported; strip the local
    variables of a task's frames unless SENTRY_SEND_TASK_ARGUMENTS."""
    record = hint.get("log_record")
    if record is not None and is_reported_failure(record):
        return None
    if TASK_TAG in event.get("tags", {}) and not settings.SENTRY_SEND_TASK_ARGUMENTS:
        for exception in event.get("exception", {}).get("values", []):
            for frame in (exception.get("stacktrace") or {}).get("frames", []):
                frame.pop("vars", None)
    return event


def is_reported_failure(record):
    """django-q2's monitor logs "Failed '<func>' (<name>) - <error>" for each failed
    attempt, which the worker reported with its traceback."""
    return (
        record.name == "django-q"
        and record.module == "monitor"
        and record.getMessage().startswith("Failed '")
    )
