import itertools
import logging
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_q.models import Failure, Success, Task
from django_q.tasks import async_task, result

from taskqueue import results
from taskqueue.models import AttemptTimes

from {{ cookiecutter.app_name }}.tasks import (
    DeliberateFailure,
    clear_expired_sessions,
    echo_test,
)


@pytest.mark.django_db
def test_echo_test_runs_in_sync_mode_and_logs(django_q_caplog):
    django_q_caplog.set_level(logging.INFO, logger="django-q")  # as in the cluster
    task_id = async_task(echo_test, "hello", sync=True)
    assert result(task_id) == "Echo: hello"
    assert "Echo task executed: hello" in django_q_caplog.text


@pytest.mark.django_db
def test_failing_task_raises_in_sync_mode():
    # In sync mode the error reaches the caller; a cluster records it as a Failure.
    with pytest.raises(DeliberateFailure, match="disk full"):
        async_task("{{ cookiecutter.app_name }}.tasks.fail_on_purpose", "disk full", sync=True)


@pytest.mark.django_db
def test_clear_expired_sessions_deletes_only_expired_ones():
    for _ in range(2):
        SessionStore().create()
    expired = SessionStore()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timedelta(days=1)
    )
    assert clear_expired_sessions.call() == 1
    assert Session.objects.count() == 2


@pytest.mark.django_db
def test_successes_past_the_limit_are_pruned_every_few_successes(settings, monkeypatch):
    settings.TASK_SUCCESS_LIMIT = 3
    monkeypatch.setattr(results, "PRUNE_EVERY", 5)
    monkeypatch.setattr(results, "_successes", itertools.count(1))
    now = timezone.now()
    failure = Task.objects.create(
        id="failed-task", name="failed", func="x", started=now, stopped=now, success=False
    )
    ids = [async_task(echo_test, str(n), sync=True) for n in range(4)]
    assert Success.objects.count() == 4  # not pruned yet
    ids.append(async_task(echo_test, "4", sync=True))
    assert set(Success.objects.values_list("id", flat=True)) == set(ids[-3:])
    # Their attempt times go with them.
    assert set(AttemptTimes.objects.values_list("task_id", flat=True)) == set(ids[-3:])
    assert Failure.objects.filter(pk=failure.pk).exists()
