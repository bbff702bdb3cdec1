"""Saved results: keep the latest TASK_SUCCESS_LIMIT successes; read a failure's error.

Q_CLUSTER "save_limit" is 0, so django-q2 does not prune; prune_successes, a receiver
of its post_execute signal (sent by the cluster's monitor after it saved a result),
does, once every PRUNE_EVERY successes, with a count, a query for ids and one DELETE.
docs/tasks.md says why.
"""

import itertools

from django.conf import settings
from django_q.models import Success

from .models import AttemptTimes

# Successes saved between two prunings: up to this many more than TASK_SUCCESS_LIMIT
# are kept for a while, and the monitor prunes with three queries per 50 tasks instead
# of three per task (docs/tasks.md).
PRUNE_EVERY = 50
_successes = itertools.count(1)


def prune_successes(sender, task, **kwargs):
    if task.get("success") and next(_successes) % PRUNE_EVERY == 0:
        prune_to_limit()


def prune_to_limit():
    """Delete the successes past TASK_SUCCESS_LIMIT, oldest first, with their attempt
    times; return how many successes.

    Also a job of schedules.py, which catches up on successes saved while no cluster
    ran this receiver (tasks run with sync=True, say)."""
    limit = settings.TASK_SUCCESS_LIMIT
    if limit <= 0 or Success.objects.count() <= limit:
        return 0
    stale = list(Success.objects.order_by("-stopped", "-pk").values_list("pk", flat=True)[limit:])
    AttemptTimes.objects.filter(pk__in=stale).delete()
    return Success.objects.filter(pk__in=stale).delete()[0]


def error_summary(result):
    """The exception line of a failed task's result ("message : Traceback ...")."""
    text = str(result)
    if "Traceback" not in text:
        return text
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()
