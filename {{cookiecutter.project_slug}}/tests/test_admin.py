from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.humanhash import uuid
from django_q.models import Task


def make_task(success, result, attempt_count=1):
    name, task_id = uuid()
    stopped = timezone.now()
    return Task.objects.create(
        id=task_id,
        name=name,
        func="{{ cookiecutter.app_name }}.tasks.echo_test",
        started=stopped - timedelta(seconds=1.5),
        stopped=stopped,
        success=success,
        result=result,
        attempt_count=attempt_count,
    )


def changelist(client, model_name):
    response = client.get(reverse(f"admin:django_q_{model_name}_changelist"))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_failed_tasks_show_duration_attempts_and_error(admin_client):
    task = make_task(
        success=False,
        result="disk full : Traceback (most recent call last):\n  File ...\n"
        "{{ cookiecutter.app_name }}.tasks.DeliberateFailure: disk full\n",
        attempt_count=3,
    )
    page = changelist(admin_client, "failure")
    for heading in ("Duration (s)", "Attempt count", "Error"):
        assert heading in page
    assert task.name in page
    assert "1.500" in page
    assert ">{{ cookiecutter.app_name }}.tasks.DeliberateFailure: disk full<" in page
    assert 'class="field-attempt_count">3<' in page
    assert "resubmit_task" in page


@pytest.mark.django_db
def test_successful_tasks_show_duration_and_attempts(admin_client):
    task = make_task(success=True, result="Echo: hi")
    page = changelist(admin_client, "success")
    for heading in ("Duration (s)", "Attempt count"):
        assert heading in page
    assert task.name in page
    assert "1.500" in page
