"""A task that fails for good mails ADMINS (taskqueue/alerts.py)."""

import re

import django
import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task
from django_q.tasks import async_task

from taskqueue.alerts import task_failed_for_good

from .processes import wait_for

SUBJECT = "Task failed: {{ cookiecutter.app_name }}.tasks.fail_on_purpose"
# Email addresses from Django 6.0 on; (name, address) pairs before.
ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("", "ops@example.com")]


def failed_task(attempts):
    now = timezone.now()
    return Task.objects.create(
        id="f" * 32,
        name="failed-task",
        func="{{ cookiecutter.app_name }}.tasks.fail_on_purpose",
        started=now,
        stopped=now,
        success=False,
        result="disk full : Traceback ...\nDeliberateFailure: disk full",
        attempt_count=attempts,
    )


@pytest.fixture
def two_attempts(settings, monkeypatch):
    """ADMINS set, and tasks that get two attempts (in this process)."""
    settings.ADMINS = ADMINS
    monkeypatch.setattr(Conf, "MAX_ATTEMPTS", 2)


@pytest.mark.django_db
def test_a_failure_with_no_attempt_left_mails_the_admins(two_attempts, mailoutbox):
    row = failed_task(attempts=2)
    task_failed_for_good(sender="django_q", task={"id": row.id, "success": False})
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com"]
    assert mail.subject.endswith(SUBJECT)
    assert "after 2 attempt(s)" in mail.body
    assert "Error: DeliberateFailure: disk full" in mail.body


@pytest.mark.django_db
def test_a_failure_to_be_retried_or_a_success_mails_nobody(two_attempts, mailoutbox):
    row = failed_task(attempts=1)
    task_failed_for_good(sender="django_q", task={"id": row.id, "success": False})
    task_failed_for_good(sender="django_q", task={"id": row.id, "success": True})
    retry_at = timezone.now()  # a retry scheduled by the worker: not the last attempt
    task_failed_for_good(
        sender="django_q", task={"id": row.id, "success": False, "retry_at": retry_at}
    )
    assert mailoutbox == []


@pytest.mark.slow
def test_the_cluster_mails_a_final_failure(live_env, start_cluster):
    cluster = start_cluster(DJANGO_Q_MAX_ATTEMPTS="1", DJANGO_ADMINS="ops@example.com")
    async_task("{{ cookiecutter.app_name }}.tasks.fail_on_purpose", "disk full")
    # The console email backend writes the mail to the cluster's output.

    def mails():
        return re.sub(r"\n\s+", " ", cluster.log())  # long headers are folded: unfold them

    assert wait_for(lambda: SUBJECT in mails(), timeout=30), cluster.log()[-3000:]
    assert "To: ops@example.com" in mails()


@pytest.mark.django_db
def test_a_mail_that_cannot_be_sent_is_logged_not_raised(
    two_attempts, monkeypatch, django_q_caplog
):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr("taskqueue.alerts.mail_admins", refuse)
    row = failed_task(attempts=2)
    with django_q_caplog.at_level("ERROR", logger="django-q"):
        task_failed_for_good(sender="django_q", task={"id": row.id, "success": False})
    assert "could not mail the admins" in django_q_caplog.text
