"""The standard tasks API on django-q2 (taskqueue/backend.py).

Modelled on what Django's own tests ask of a task backend: enqueue, the result's
lifecycle through a real cluster, failures with their traceback, defer, invalid
tasks, unknown result ids and async enqueue.
"""

import copy
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.checks import Error
from django.db import connection
from django.test.utils import CaptureQueriesContext, modify_settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from taskqueue.backend import (
    DjangoQBackend,
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
)

from {{ cookiecutter.app_name }}.tasks import DeliberateFailure, echo_test, fail_on_purpose

from . import standard_tasks
from .processes import wait_for

# Seconds a test waits for a cluster to finish a task.
FINISH_TIMEOUT = 30


@pytest.fixture
def cluster(start_cluster):
    """A cluster with room for these tests whatever the answers: a task may run 10 s,
    and every success is kept."""
    return start_cluster(
        DJANGO_Q_TIMEOUT="10", DJANGO_Q_RETRY="1000", DJANGO_TASK_SUCCESS_LIMIT="1000"
    )


def finished(result, timeout=FINISH_TIMEOUT):
    """Refresh result until its task has finished; return it (or fail)."""

    def refreshed():
        result.refresh()
        return result.is_finished

    assert wait_for(refreshed, timeout), f"{result.task.name} is still {result.status}"
    return result


@pytest.mark.django_db
def test_enqueue_returns_a_ready_result_with_json_arguments():
    result = standard_tasks.add.enqueue(2, b=(3,))
    assert result.status == TaskResultStatus.READY
    assert result.args == [2] and result.kwargs == {"b": [3]}
    assert result.enqueued_at is not None and result.finished_at is None
    assert result.backend == "default"
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value
    again = standard_tasks.add.get_result(result.id)
    assert (again.id, again.status, again.args) == (result.id, TaskResultStatus.READY, [2])


@pytest.mark.django_db
def test_arguments_that_are_not_json_are_refused():
    with pytest.raises(TypeError):
        standard_tasks.add.enqueue({1, 2}, 3)


@pytest.mark.django_db
def test_keyword_arguments_django_q2_takes_for_itself_are_refused():
    with pytest.raises(InvalidTask, match="timeout"):
        standard_tasks.add.enqueue(1, b=2, timeout=3)


@pytest.mark.django_db
def test_invalid_tasks_are_refused():
    with pytest.raises(InvalidTask, match="priority"):
        standard_tasks.add.using(priority=10)
    with pytest.raises(InvalidTask, match="Queue 'other'"):
        standard_tasks.add.using(queue_name="other")
    with pytest.raises(InvalidTask, match="aware"):
        standard_tasks.add.using(run_after=timezone.now().replace(tzinfo=None))


@pytest.mark.django_db
def test_an_unknown_result_id_does_not_exist():
    with pytest.raises(TaskResultDoesNotExist):
        standard_tasks.add.get_result("0123456789abcdef0123456789abcdef")
    with pytest.raises(TaskResultDoesNotExist):
        standard_tasks.add.get_result("deferred-nothing")


@pytest.mark.django_db
def test_a_task_of_django_q2s_own_api_has_no_standard_result():
    task_id = async_task("taskqueue.checks.safe_retry", 1, 1, 1, sync=True)
    with pytest.raises(TaskResultDoesNotExist):
        standard_tasks.add.get_result(task_id)


@pytest.mark.django_db
def test_async_task_given_a_task_queues_it_with_a_standard_result():
    task_id = async_task(standard_tasks.add, 1, 2)
    result = standard_tasks.add.get_result(task_id)
    assert (result.id, result.status, result.args) == (task_id, TaskResultStatus.READY, [1, 2])


@pytest.mark.django_db
def test_async_enqueue():
    result = async_to_sync(standard_tasks.add.aenqueue)(1, 2)
    assert result.status == TaskResultStatus.READY
    assert async_to_sync(standard_tasks.add.aget_result)(result.id).args == [1, 2]


@pytest.mark.django_db
def test_a_deferred_task_waits_in_a_schedule():
    run_after = timezone.now() + timedelta(hours=1)
    result = standard_tasks.add.using(run_after=run_after).enqueue(1, 2)
    schedule = Schedule.objects.get(name=result.id)
    assert schedule.next_run == run_after
    assert schedule.schedule_type == Schedule.ONCE
    refreshed = standard_tasks.add.get_result(result.id)
    assert (refreshed.status, refreshed.args) == (TaskResultStatus.READY, [1, 2])


@pytest.mark.django_db
def test_calling_a_task_outside_a_worker_says_how_to_run_it():
    with pytest.raises(TypeError, match=r"run it with .call\(\)"):
        standard_tasks.add(1, 2)
    assert standard_tasks.add.call(1, 2) == 3


@pytest.mark.django_db
def test_async_task_runs_a_standard_task_in_sync_mode():
    task_id = async_task("{{ cookiecutter.app_name }}.tasks.echo_test", "hello", sync=True)
    result = echo_test.get_result(task_id)
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, "Echo: hello")


@pytest.mark.django_db
def test_a_failure_in_sync_mode_reaches_the_caller():
    with pytest.raises(DeliberateFailure, match="disk full"):
        async_task(fail_on_purpose, "disk full", sync=True)


def test_check_reports_queues_without_a_cluster_and_unread_options(settings):
    backend = DjangoQBackend("default", {"QUEUES": ["default", "emails"], "OPTIONS": {"x": 1}})
    errors = list(backend.check())
    assert [error.id for error in errors] == [
        "taskqueue.E003",
        "taskqueue.E004",
    ]
    assert all(isinstance(error, Error) for error in errors)
    assert "'emails'" in errors[0].msg
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"emails": {}}}
    assert list(DjangoQBackend("default", {"QUEUES": ["default", "emails"]}).check()) == []


@pytest.mark.django_db
def test_get_result_and_refresh_give_the_result_enqueue_returned():
    result = standard_tasks.add.enqueue(2, b=3)
    assert result.task.get_backend().get_result(result.id) == result
    before = copy.copy(result)
    result.refresh()
    assert result == before


def reads_of(result_id, monkeypatch):
    """(packages unpickled, database queries) of one get_result()."""
    loads = []
    unpickle = SignedPackage.loads
    monkeypatch.setattr(SignedPackage, "loads", lambda value: loads.append(1) or unpickle(value))
    with CaptureQueriesContext(connection) as queries:
        result = standard_tasks.add.get_result(result_id)
    monkeypatch.setattr(SignedPackage, "loads", unpickle)
    assert result.status == TaskResultStatus.READY
    return len(loads), len(queries)


@pytest.mark.django_db
def test_reading_a_queued_task_costs_the_same_however_long_the_queue(live_env, monkeypatch):
    results = [standard_tasks.add.enqueue(n, n) for n in range(20)]
    shallow = reads_of(results[10].id, monkeypatch)
    for n in range(300):
        async_task("tests.tasks.record_run", f"behind-{n}")
        standard_tasks.add.enqueue(n, 0)
    assert reads_of(results[10].id, monkeypatch) == shallow
    assert shallow[0] == 1  # its own package, no other
    assert standard_tasks.add.get_result(results[10].id).args == [10, 10]


@pytest.mark.django_db
def test_a_deferred_result_keeps_its_enqueue_time_and_run_after():
    run_after = timezone.now() + timedelta(hours=1)
    result = standard_tasks.add.using(run_after=run_after).enqueue(1, 1)
    read = result.task.get_backend().get_result(result.id)
    assert read == result
    assert read.enqueued_at == result.enqueued_at
    assert read.task.run_after == run_after


@pytest.mark.django_db
def test_using_options_survive_the_round_trip(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"queue-1": {}}}
    settings.TASKS = {"default": {**settings.TASKS["default"], "QUEUES": ["default", "queue-1"]}}
    result = standard_tasks.add.using(queue_name="queue-1").enqueue(1, 2)
    read = result.task.get_backend().get_result(result.id)
    assert read.task.queue_name == "queue-1"
    assert read == result


@pytest.mark.parametrize("app", ["django_q", "taskqueue"])
def test_check_names_an_app_missing_from_installed_apps(app):
    with modify_settings(INSTALLED_APPS={"remove": [app]}):
        errors = list(DjangoQBackend("default", {}).check())
    assert [error.id for error in errors] == ["taskqueue.E005"]
    assert f"{app!r} is not in INSTALLED_APPS" in errors[0].msg
    assert f"Add {app!r} to INSTALLED_APPS" in errors[0].hint


@pytest.mark.slow
def test_result_lifecycle_through_a_real_cluster(cluster, task_runs):
    result = standard_tasks.add.enqueue(2, 3)
    finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL, cluster.log()
    assert result.return_value == 5
    assert result.errors == [] and result.attempts == 1
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at  # one attempt
    assert result.task.get_backend().get_result(result.id) == result
    # The worker sent the signals, with the result's id and status.
    assert task_runs.events(result.id) == [
        (result.id, "started:RUNNING"),
        (result.id, "finished:SUCCESSFUL"),
    ]


@pytest.mark.slow
def test_a_running_task_is_running(cluster, task_runs):
    result = standard_tasks.sleep_for.enqueue(3)

    def running():
        result.refresh()
        return result.status == TaskResultStatus.RUNNING

    assert wait_for(running, FINISH_TIMEOUT)
    assert result.enqueued_at <= result.started_at == result.last_attempted_at
    assert result.task.get_backend().get_result(result.id) == result
    started_at = result.started_at
    assert finished(result).return_value == 3
    assert result.started_at == started_at <= result.finished_at


@pytest.mark.slow
def test_a_task_held_by_a_cluster_before_it_starts_has_a_result(start_cluster, task_runs):
    # One worker busy for 2 s: the next task waits in the cluster's memory meanwhile
    # (with Redis, it is then in no list: the broker module keeps a record of it).
    start_cluster(
        DJANGO_Q_WORKERS="1",
        DJANGO_Q_QUEUE_LIMIT="2",
        DJANGO_Q_TIMEOUT="10",
        DJANGO_Q_RETRY="1000",
        DJANGO_TASK_SUCCESS_LIMIT="1000",
    )
    busy = standard_tasks.sleep_for.enqueue(2)
    held = standard_tasks.add.enqueue(1, 1)

    def refreshed():
        held.refresh()  # never TaskResultDoesNotExist
        return held.is_finished

    assert wait_for(refreshed, FINISH_TIMEOUT, interval=0.02)
    assert held.return_value == 2
    assert finished(busy).return_value == 2


@pytest.fixture
def one_attempt(monkeypatch, start_cluster):
    """A cluster, and this process, with max_attempts 1: a failure is final."""
    monkeypatch.setattr(Conf, "MAX_ATTEMPTS", 1)
    return start_cluster(
        DJANGO_Q_MAX_ATTEMPTS="1",
        DJANGO_Q_TIMEOUT="10",
        DJANGO_Q_RETRY="1000",
        DJANGO_TASK_SUCCESS_LIMIT="1000",
    )


@pytest.mark.slow
def test_a_failure_has_its_exception_class_and_traceback(one_attempt, task_runs):
    cluster = one_attempt
    result = standard_tasks.divide.enqueue(1, 0)
    finished(result)
    assert result.status == TaskResultStatus.FAILED, cluster.log()
    [error] = result.errors
    assert error.exception_class is ZeroDivisionError
    assert error.traceback.startswith("Traceback (most recent call last):")
    assert "return a / b" in error.traceback
    assert error.traceback.rstrip().endswith("ZeroDivisionError: division by zero")
    with pytest.raises(ValueError, match="failed"):
        _ = result.return_value
    assert task_runs.events(result.id)[-1] == (result.id, "finished:FAILED")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "exception"),
    [
        ("exit_the_process", "builtins.SystemExit"),
        ("interrupt", "builtins.KeyboardInterrupt"),
        ("close_a_generator", "builtins.GeneratorExit"),
    ],
)
def test_a_base_exception_fails_the_task_once_and_the_cluster_goes_on(
    one_attempt, task_runs, name, exception
):
    cluster = one_attempt
    result = finished(getattr(standard_tasks, name).enqueue())
    assert result.status == TaskResultStatus.FAILED, cluster.log()
    [error] = result.errors
    assert error.exception_class_path == exception
    assert exception.removeprefix("builtins.") in error.traceback
    assert [event for _, event in task_runs.events(result.id)] == [
        "started:RUNNING",
        "finished:FAILED",
    ]
    assert finished(standard_tasks.add.enqueue(1, 2)).return_value == 3
    assert "after death" not in cluster.log()  # no worker died


@pytest.mark.slow
def test_a_return_value_that_is_not_json_fails_the_task(one_attempt, task_runs):
    result = finished(standard_tasks.return_a_set.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError


@pytest.mark.slow
def test_context_async_tasks_and_async_task(cluster, task_runs):
    with_context = standard_tasks.which_attempt.enqueue("first")
    coroutine = standard_tasks.add_later.enqueue(4, 5)
    task_id = async_task("tests.standard_tasks.add", 6, 7)
    assert finished(with_context).return_value == {
        "label": "first",
        "id": with_context.id,
        "attempt": 1,
    }
    assert finished(coroutine).return_value == 9
    assert finished(standard_tasks.add.get_result(task_id)).return_value == 13


@pytest.mark.slow
def test_a_deferred_task_runs_once_due_and_not_before(cluster, task_runs):
    run_after = timezone.now() + timedelta(seconds=3)
    result = standard_tasks.add.using(run_after=run_after).enqueue(1, 1)
    assert not wait_for(lambda: task_runs.events(result.id), timeout=2)
    finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2
    assert result.started_at >= run_after
    # The guard runs the scheduler in the 0.5 s cycle after a schedule falls due.
    assert result.finished_at - run_after < timedelta(seconds=3)
    assert [event for _, event in task_runs.events(result.id)] == [
        "started:RUNNING",
        "finished:SUCCESSFUL",
    ]
