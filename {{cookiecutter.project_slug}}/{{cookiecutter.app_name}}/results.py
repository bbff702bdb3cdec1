"""Saved results: keep the latest TASK_SUCCESS_LIMIT successes; read a failure's error.

Q_CLUSTER "save_limit" is 0, so django-q2 does not prune; prune_successes, a receiver
of its post_execute signal (sent by the cluster after it saved a result), does, with
a count, a query for ids and one DELETE. docs/tasks.md says why.
"""

from django.conf import settings
from django_q.models import Success


def prune_successes(sender, task, **kwargs):
    limit = settings.TASK_SUCCESS_LIMIT
    if not task.get("success") or limit <= 0:
        return
    if Success.objects.count() <= limit:
        return
    stale = list(Success.objects.order_by("-stopped", "-pk").values_list("pk", flat=True)[limit:])
    Success.objects.filter(pk__in=stale).delete()


def error_summary(result):
    """The exception line of a failed task's result ("message : Traceback ...")."""
    text = str(result)
    if "Traceback" not in text:
        return text
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()
