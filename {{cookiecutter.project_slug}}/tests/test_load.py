"""Under load and faults, with real processes: nothing locked, lost or run twice.

Each test starts a real qcluster on the test database (and stops it, whatever
happens); they are marked slow.
"""

import json
import os
{%- if cookiecutter.broker == "orm" %}
import signal
{%- endif %}
import subprocess
import sys
from collections import Counter

import pytest
from django.conf import settings
from django_q.models import Failure
from django_q.tasks import async_task

from .conftest import BASE_DIR, COMMAND_TIMEOUT, queued_tasks, wait_for

pytestmark = pytest.mark.slow

PRODUCERS = 4
TASKS_PER_PRODUCER = 100
DRAIN_TIMEOUT = 60


def run_producers(live_env, count, pattern="atomic"):
    """Start PRODUCERS processes at once; return their JSON reports."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.producer",
                "--prefix",
                f"p{n}",
                "--count",
                str(count),
                "--pattern",
                pattern,
            ],
            cwd=BASE_DIR,
            env={**os.environ, **live_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PRODUCERS)
    ]
    reports = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=COMMAND_TIMEOUT)
        finally:
            process.kill()
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def queue_is_empty():
    return queued_tasks() == 0


def test_mixed_load_loses_nothing_and_runs_each_task_once(live_env, start_cluster, task_runs):
    workers = max(2, settings.Q_CLUSTER["workers"])
    cluster = start_cluster(DJANGO_Q_WORKERS=str(workers))

    reports = run_producers(live_env, TASKS_PER_PRODUCER)

    assert [error for report in reports for error in report["errors"]] == []
    total = PRODUCERS * TASKS_PER_PRODUCER
    assert sum(report["enqueued"] for report in reports) == total
    drained = wait_for(lambda: task_runs.count() >= total and queue_is_empty(), DRAIN_TIMEOUT)
    assert drained, f"{task_runs.count()} of {total} ran; log:\n{cluster.log()[-3000:]}"
    runs = Counter(key for key, _ in task_runs.events())
    assert len(runs) == total
    assert set(runs.values()) == {1}, [key for key, n in runs.items() if n > 1]
    log = cluster.log()
    assert "database is locked" not in log
    assert "Could not save task result" not in log

{%- if cookiecutter.broker == "orm" %}


def test_a_task_running_when_the_cluster_is_killed_is_delivered_again(
    live_env, start_cluster, task_runs
):
    timing = {"DJANGO_Q_TIMEOUT": "2", "DJANGO_Q_RETRY": "4"}
    first = start_cluster(**timing)
    async_task("tests.tasks.sleep_and_record", "crash", 1)
    assert wait_for(lambda: task_runs.count("crash", "start") == 1, 20), first.log()

    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    assert task_runs.count("crash", "finish") == 0

    second = start_cluster(**timing)
    assert wait_for(lambda: task_runs.count("crash", "finish") == 1, 20), second.log()
    assert [event for _, event in task_runs.events("crash")] == ["start", "start", "finish"]
    assert wait_for(queue_is_empty, 5)


def test_failing_and_timed_out_tasks_use_every_attempt_then_fail_once(
    live_env, start_cluster, task_runs
):
    max_attempts = 3
    cluster = start_cluster(
        DJANGO_Q_TIMEOUT="1", DJANGO_Q_RETRY="2", DJANGO_Q_MAX_ATTEMPTS=str(max_attempts)
    )
    failing = async_task("tests.tasks.fail_and_record", "fails")
    slow = async_task("tests.tasks.sleep_and_record", "too-slow", 30)

    def both_failed_for_good():
        return (
            Failure.objects.filter(id__in=[failing, slow], attempt_count=max_attempts).count() == 2
            and queue_is_empty()
        )

    assert wait_for(both_failed_for_good, 30), cluster.log()[-3000:]

    assert task_runs.count("fails", "run") == max_attempts
    failure = Failure.objects.get(id=failing)
    assert "always fails: fails" in failure.result

    assert task_runs.count("too-slow", "start") == max_attempts
    assert task_runs.count("too-slow", "finish") == 0
    assert "timeout" in Failure.objects.get(id=slow).result.lower()
    assert Failure.objects.count() == 2
{%- else %}


def test_with_redis_a_failing_task_runs_once_and_is_recorded(live_env, start_cluster, task_runs):
    # Redis has no delivery receipts: no retry, whatever Q_CLUSTER says.
    cluster = start_cluster()
    failing = async_task("tests.tasks.fail_and_record", "fails")
    assert wait_for(lambda: Failure.objects.filter(id=failing).exists(), 30), cluster.log()
    assert wait_for(queue_is_empty, 5)
    assert task_runs.count("fails", "run") == 1
    assert Failure.objects.get(id=failing).attempt_count == 1
{%- endif %}
