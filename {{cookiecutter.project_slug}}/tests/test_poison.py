"""Poison tasks end as Failures, with a readable error, and do not block the others.

The guards are in taskqueue/workarounds/poison.py; the cluster tests start a real
qcluster (and stop it, whatever happens).
"""

import pickle
import sys

import pytest
from django.conf import settings
from django_q import core_signing
from django_q.conf import Conf
from django_q.models import Failure
from django_q.signing import PickleSerializer, SignedPackage
from django_q.tasks import async_task

from taskqueue.workarounds.poison import MAX_RESULT_BYTES, refuse_unsaveable_result

from .processes import wait_for

MAX_ATTEMPTS = 2
TIMING = {
    "DJANGO_Q_TIMEOUT": "2",
    "DJANGO_Q_RETRY": "3",
    "DJANGO_Q_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "DJANGO_TASK_RETRY_DELAY": "0",  # each failed attempt retried at once
}


def finished(result):
    task = {"result": result, "success": True}
    refuse_unsaveable_result(sender="django_q", task=task)
    return task


@pytest.mark.parametrize("result", [lambda: None, (n for n in range(2))], ids=["lambda", "gen"])
def test_a_result_that_cannot_be_pickled_fails_the_task(result):
    task = finished(result)
    assert task["success"] is False
    assert "cannot be saved" in task["result"]


def test_a_result_too_large_fails_the_task():
    task = finished(b"x" * (MAX_RESULT_BYTES + 1))
    assert task["success"] is False
    assert f"more than the {MAX_RESULT_BYTES}" in task["result"]


def test_a_plain_result_is_kept():
    assert finished({"rows": [1, 2]}) == {"result": {"rows": [1, 2]}, "success": True}


def test_a_task_whose_arguments_no_longer_unpickle_decodes_to_a_failing_task(
    gone_module, monkeypatch
):
    task = {"id": "1", "name": "n", "func": "tests.tasks.record_run", "args": (gone_module.Gone(),)}
    data = pickle.dumps(task)
    monkeypatch.delitem(sys.modules, gone_module.__name__)
    task = PickleSerializer.loads(data)
    assert task["func"] == "taskqueue.workarounds.poison.undecodable_task"
    assert task["args"][0] == "tests.tasks.record_run"
    assert "tests.removed_since_enqueue.Gone" in task["args"][1]


def test_a_task_signed_with_a_fallback_key_still_loads(settings):
    settings.SECRET_KEY_FALLBACKS = ["the-key-before-rotation"]
    signed = core_signing.dumps(
        {"id": "1"}, key="the-key-before-rotation", salt=Conf.PREFIX, serializer=PickleSerializer
    )
    assert SignedPackage.loads(signed) == {"id": "1"}


@pytest.mark.slow
def test_poison_tasks_end_as_failures_and_others_still_run(
    live_env, start_cluster, task_runs, queued_tasks, gone_module
):
    # shape: (task id, what its Failure says)
    poison = {
        "lambda": (async_task("tests.tasks.return_lambda"), "cannot be saved"),
        "generator": (async_task("tests.tasks.return_generator"), "cannot be saved"),
        "lock": (async_task("tests.tasks.return_lock"), "cannot be saved"),
        "too large": (
            async_task("tests.tasks.return_too_much", MAX_RESULT_BYTES + 1),
            "more than the",
        ),
        "function removed": (async_task("tests.tasks.no_longer_exists"), "is not defined"),
        "function object removed": (
            async_task(gone_module.gone_function, "key"),
            "could not be decoded",
        ),
        "arguments removed": (
            async_task("tests.tasks.record_run", gone_module.Gone()),
            "could not be decoded",
        ),
        "sys.exit()": (async_task("tests.tasks.exit_and_record", "exit"), "raised SystemExit"),
    }
    async_task("tests.tasks.record_run", "healthy")
    # Timings compressed below check E002's bound: the tasks fail at once.
    cluster = start_cluster(skip_checks=True, **TIMING)
    ids = [task_id for task_id, _ in poison.values()]

    def all_ended():  # failed, and no longer queued for another attempt
        return queued_tasks() == 0 and Failure.objects.filter(id__in=ids).count() == len(ids)

    assert wait_for(all_ended, timeout=60), cluster.log()[-3000:]
    assert task_runs.count("healthy", "run") == 1
    # Each attempt is recorded: no more runs than attempts, and no worker died for it.
    exited = Failure.objects.get(id=poison["sys.exit()"][0])
    assert task_runs.count("exit", "run") == exited.attempt_count
    assert "after death" not in cluster.log()
    for shape, (task_id, says) in poison.items():
        failure = Failure.objects.get(id=task_id)
        assert failure.attempt_count <= MAX_ATTEMPTS, shape
        assert says in failure.result.split(" : Traceback", 1)[0], (shape, failure.result)


@pytest.mark.slow
def test_queued_tasks_survive_a_secret_key_rotation(live_env, start_cluster, task_runs):
    async_task("tests.tasks.record_run", "signed-with-the-old-key")
    start_cluster(
        DJANGO_SECRET_KEY="a-new-key-" + "x" * 50,
        DJANGO_SECRET_KEY_FALLBACKS=settings.SECRET_KEY,
    )
    assert wait_for(lambda: task_runs.count("signed-with-the-old-key") == 1, timeout=30)
