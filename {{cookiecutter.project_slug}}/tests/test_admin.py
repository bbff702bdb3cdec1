from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from django.utils.timezone import localtime
from django_q.humanhash import uuid
from django_q.models import Failure, Task

from taskqueue.admin import breakable
from taskqueue.models import ScheduledRetry


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
    for heading in ("Task", "Name", "Finished", "Seconds", "Attempts", "Error"):
        assert heading in page
    assert f"/{task.pk}/change/" in page
    assert f'class="field-name">{task.name}<' in page
    assert "1.500" in page
    # Dotted paths may wrap (after a dot, an underscore, inside CamelCase): the list fits
    # a 1280 px screen.
    error = "{{ cookiecutter.app_name }}.tasks.DeliberateFailure: disk full"
    assert f">{breakable(error)}<" in page
    assert "<wbr>tasks.<wbr>Deliberate<wbr>Failure" in page
    # Attempts made of the policy's: the default one, as echo_test declares none.
    assert 'class="field-attempts">3 of {{ cookiecutter.q_max_attempts }}<' in page
    assert "resubmit_task" in page


@pytest.mark.django_db
def test_a_failed_task_waiting_for_its_retry_shows_when_it_is_due(admin_client):
    task = make_task(success=False, result="disk full", attempt_count=1)
    due = timezone.now() + timedelta(minutes=5)
    ScheduledRetry.objects.create(task_id=task.pk, due_at=due, attempt=2)
    page = changelist(admin_client, "failure")
    made = "1 of {{ cookiecutter.q_max_attempts }}"
    assert f'class="field-attempts">{made}<br>next {localtime(due):%H:%M:%S}<' in page


def test_long_words_may_wrap_every_ten_characters():
    assert breakable("averyveryverylongappname.tasks") == (
        "averyveryv<wbr>erylongapp<wbr>name.<wbr>tasks"
    )


@pytest.mark.django_db
def test_successful_tasks_show_duration_and_attempts(admin_client):
    task = make_task(success=True, result="Echo: hi")
    page = changelist(admin_client, "success")
    for heading in ("Seconds", "Attempts"):
        assert heading in page
    assert task.name in page
    assert "1.500" in page


def staff_user(*codenames):
    user = User.objects.create_user("operator", password="password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def offered_actions(client, model_name):
    response = client.get(reverse(f"admin:django_q_{model_name}_changelist"))
    assert response.status_code == 200
    action_form = response.context["action_form"]  # None when no action is offered
    if action_form is None:
        return set()
    return {name for name, _ in action_form.fields["action"].choices} - {""}


@pytest.mark.django_db
def test_a_view_only_user_is_offered_no_action(client):
    client.force_login(staff_user("view_failure", "view_success"))
    make_task(success=False, result="boom")
    assert offered_actions(client, "failure") == set()
    assert offered_actions(client, "success") == set()


@pytest.mark.django_db
def test_a_view_only_user_cannot_resubmit_a_failed_task(client):
    client.force_login(staff_user("view_failure"))
    task = make_task(success=False, result="boom")
    client.post(
        reverse("admin:django_q_failure_changelist"),
        {"action": "resubmit_task", "_selected_action": [task.pk]},
    )
    assert Failure.objects.filter(pk=task.pk).exists()


@pytest.mark.django_db
def test_resubmitting_a_failure_needs_the_delete_permission(client):
    client.force_login(staff_user("view_failure", "change_failure"))
    make_task(success=False, result="boom")
    assert "resubmit_task" not in offered_actions(client, "failure")


@pytest.mark.django_db
def test_change_permission_offers_resubmit_of_successes(client):
    client.force_login(staff_user("view_success", "change_success"))
    make_task(success=True, result="ok")
    assert "resubmit_task" in offered_actions(client, "success")
