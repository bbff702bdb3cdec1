"""What the standard tasks API (taskqueue/backend.py) asks the ORM broker."""

from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ


def queued_task(result_id):
    """(package, taken) of the task in a queue, or None.

    It reads every queued task: get_result() of a task not finished yet costs a scan
    of the queue. A task taken by a cluster stays in the queue, locked, until its
    result is saved.
    """
    for row in OrmQ.objects.using(Conf.ORM).all():
        package = row.task
        if result_id in (package.get("id"), package.get("group")):
            return package, row.lock is not None and row.lock > timezone.now()
    return None


def remember_enqueued(result_id, package):
    """Nothing to record: the task's row in the queue is its record."""


def mark_running(result_id, package):
    """Nothing to record: the queue's lock already says which tasks are taken."""


def forget(result_id):
    """Nothing to drop: the row left the queue when the result was saved."""


def will_be_retried(attempt_count):
    """Whether a task that failed after attempt_count attempts is delivered again."""
    return not Conf.ACK_FAILURES and (Conf.MAX_ATTEMPTS == 0 or attempt_count < Conf.MAX_ATTEMPTS)
