"""Background tasks. Enqueue them with django_q.tasks.async_task:

    from django_q.tasks import async_task
    async_task("{{ cookiecutter.app_name }}.tasks.echo_test", "hello")

A running cluster (`python manage.py qcluster`) picks them up.
"""

import logging

from django.contrib.sessions.models import Session
from django.utils import timezone

logger = logging.getLogger("django-q")


def echo_test(message):
    """Return the message: proves that a cluster runs tasks (see `manage.py qping`)."""
    logger.info("Echo task executed: %s", message)
    return f"Echo: {message}"


def clear_expired_sessions():
    """Delete expired sessions, like `manage.py clearsessions`; return how many.

    A typical periodic job: schedule it in the admin (Scheduled tasks) or with
    django_q.tasks.schedule(
        "{{ cookiecutter.app_name }}.tasks.clear_expired_sessions", schedule_type="D"
    ).
    """
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    logger.info("Deleted %d expired sessions", deleted)
    return deleted


class DeliberateFailure(Exception):
    """Raised by fail_on_purpose."""


def fail_on_purpose(reason="deliberate failure"):
    """Always raise: shows the failure policy (retries, then the Failed tasks admin)."""
    raise DeliberateFailure(reason)
