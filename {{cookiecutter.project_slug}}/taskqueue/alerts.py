"""Say when a task fails for good: after its last attempt, nothing will run it again.

apps.py connects task_failed_for_good to django-q2's post_execute signal (sent by the
cluster's monitor once a result is saved). The shipped alert mails ADMINS; connect
your own receivers to `final_failure` (a chat message, a pager) the same way.
"""

import logging

from django.core.mail import mail_admins
from django.dispatch import Signal
from django_q.models import Task

from .results import error_summary
from .retries import will_be_retried

logger = logging.getLogger("django-q")

# Sent with `task`: the django_q Task row of a task that failed for good.
final_failure = Signal()


def task_failed_for_good(sender, task, **kwargs):
    """Receiver of post_execute: send final_failure for a failure with no attempt left."""
    if task.get("success", True) or task.get("retry_at"):
        return
    row = Task.objects.filter(pk=task["id"]).first()
    if row is not None and not row.success and not will_be_retried(row):
        final_failure.send(sender=Task, task=row)


def mail_the_admins(sender, task, **kwargs):
    """Receiver of final_failure: a mail to ADMINS (nothing is sent when it is empty).

    A mail that cannot be sent is logged, not raised: the cluster's monitor goes on."""
    try:
        mail_admins(
            subject=f"Task failed: {task.func}",
            message=(
                f"The task {task.name} ({task.func}, id {task.id}) failed after "
                f"{task.attempt_count} attempt(s), at {task.stopped:%Y-%m-%d %H:%M:%S %Z}, "
                f"and will not run again.\n\nError: {error_summary(task.result)}\n\n"
                f"{task.result}\n\nResubmit it from the admin's Failed tasks page, once fixed."
            ),
        )
    except Exception:
        logger.exception("could not mail the admins that task %s failed", task.id)
