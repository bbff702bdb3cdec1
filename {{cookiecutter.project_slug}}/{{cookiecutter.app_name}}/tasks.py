"""Background tasks, written with Django's standard tasks API (docs/tasks.md):

    from {{ cookiecutter.app_name }}.tasks import echo_test
    result = echo_test.enqueue("hello")  # a running cluster (`manage.py qcluster`) runs it
    result.refresh()
    result.status, result.return_value  # SUCCESSFUL, "Echo: hello"

django-q2's own API runs them too:

    async_task("{{ cookiecutter.app_name }}.tasks.echo_test", "hello")

A task that fails is retried: by its own policy (`@retry`, as clear_expired_sessions
below), or by the project's default (Q_CLUSTER max_attempts, TASK_RETRY_DELAY).
"""

import logging

from django.contrib.sessions.models import Session
from django.db.models.functions import Now
from {{ cookiecutter.__tasks_package }} import task

from taskqueue.retries import retry

logger = logging.getLogger("django-q")


@task
def echo_test(message):
    """Log and return the message: the smallest task there is."""
    logger.info("Echo task executed: %s", message)
    return f"Echo: {message}"


@retry(attempts=5, delay=30, cap=600)  # safe to repeat: retried after 30 s, 60 s, 120 s, 240 s
@task
def clear_expired_sessions():
    """Delete expired sessions, like `manage.py clearsessions`; return how many.

    A typical periodic job: schedules.py runs it every night."""
    deleted, _ = Session.objects.filter(expire_date__lt=Now()).delete()
    logger.info("Deleted %d expired sessions", deleted)
    return deleted


class DeliberateFailure(Exception):
    """Raised by fail_on_purpose."""


@task
def fail_on_purpose(reason="deliberate failure"):
    """Always raise: shows the failure policy (retries, then the Failed tasks admin)."""
    raise DeliberateFailure(reason)
