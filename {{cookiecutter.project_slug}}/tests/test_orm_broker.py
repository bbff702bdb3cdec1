"""The ORM broker: the queue lives in the database, so tasks are retried and recovered.

The cluster tests start a real qcluster on the test database (and stop it, whatever
happens). docs/broker-orm.md describes the guarantees they check.
"""

import os
import queue as queue_module
import re
import signal
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Task
from django_q.signing import SignedPackage
from django_q.status import Stat
from django_q.tasks import async_task

from taskqueue.backend import TaskResultStatus
from taskqueue.brokers.orm import prune_claims
from taskqueue.checks import safe_retry
from taskqueue.health import SLACK, abandoned_tasks_problem, progress_problem
from taskqueue.models import Claim
from taskqueue.workarounds.cluster import return_tasks_not_started

from {{ cookiecutter.app_name }}.tasks import DeliberateFailure, fail_on_purpose

from .processes import run_manage, wait_for, wait_until_running


def test_the_broker_is_the_default_database():
    assert settings.Q_CLUSTER["orm"] == "default"


def test_the_generated_retry_covers_the_tasks_a_cluster_holds():
    q_cluster = settings.Q_CLUSTER
    needed = safe_retry(q_cluster["timeout"], q_cluster["queue_limit"], q_cluster["workers"])
    assert q_cluster["retry"] >= needed


def test_failed_tasks_are_retried_not_acknowledged():
    assert settings.Q_CLUSTER["ack_failures"] is False


def test_cluster_stats_go_to_a_cache_shared_between_processes():
    cache_alias = settings.Q_CLUSTER["cache"]
    assert settings.CACHES[cache_alias]["BACKEND"] == (
        "django.core.cache.backends.db.DatabaseCache"
    )


@pytest.mark.django_db
def test_queued_tasks_are_visible(admin_client):
    OrmQ.objects.create(
        key="{{ cookiecutter.project_slug }}",
        payload=SignedPackage.dumps(
            {
                "id": "abc",
                "name": "queued-task",
                "func": "{{ cookiecutter.app_name }}.tasks.echo_test",
            }
        ),
        lock=timezone.now(),
    )
    response = admin_client.get(reverse("admin:django_q_ormq_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "queued-task" in page
    assert "{{ cookiecutter.app_name }}.tasks.echo_test" in page


def test_qping_without_a_cluster_leaves_nothing_queued(live_env, queued_tasks):
    completed = run_manage("qping", "--timeout", "1", env=live_env)
    assert completed.returncode == 1
    assert queued_tasks() == 0


@pytest.mark.slow
def test_a_task_running_when_the_cluster_is_killed_is_delivered_again(
    live_env, start_cluster, task_runs, queued_tasks
):
    # Timings compressed below check E002's bound: one task, nothing waits in memory. Two
    # attempts: the killed one is the first.
    timing = {
        "DJANGO_Q_TIMEOUT": "2",
        "DJANGO_Q_RETRY": "4",
        "DJANGO_Q_MAX_ATTEMPTS": "2",
        "skip_checks": True,
    }
    first = start_cluster(**timing)
    async_task("tests.tasks.sleep_and_record", "crash", 1)
    assert wait_for(lambda: task_runs.count("crash", "start") == 1, 20), first.log()

    os.killpg(first.pid, signal.SIGKILL)
    first.popen.wait(timeout=10)
    assert task_runs.count("crash", "finish") == 0

    second = start_cluster(**timing)
    assert wait_for(lambda: task_runs.count("crash", "finish") == 1, 20), second.log()
    assert [event for _, event in task_runs.events("crash")] == ["start", "start", "finish"]
    assert wait_for(lambda: queued_tasks() == 0, 5)


@pytest.mark.slow
def test_failing_and_timed_out_tasks_use_every_attempt_then_fail_once(
    live_env, start_cluster, task_runs, queued_tasks
):
    max_attempts = 3
    # Timings compressed below check E002's bound: two tasks, two workers. Each failed
    # attempt is retried after 1 s (tests/test_retries.py checks the delays).
    cluster = start_cluster(
        DJANGO_Q_TIMEOUT="1",
        DJANGO_Q_RETRY="3",
        DJANGO_Q_MAX_ATTEMPTS=str(max_attempts),
        DJANGO_TASK_RETRY_DELAY="1",
        DJANGO_Q_WORKERS="2",
        skip_checks=True,
    )
    failing = async_task("tests.tasks.fail_and_record", "fails")
    slow = async_task("tests.tasks.sleep_and_record", "too-slow", 30)

    def both_failed_for_good():
        return (
            Failure.objects.filter(id__in=[failing, slow], attempt_count=max_attempts).count() == 2
            and queued_tasks() == 0
        )

    assert wait_for(both_failed_for_good, 30), cluster.log()[-3000:]

    assert task_runs.count("fails", "run") == max_attempts
    failure = Failure.objects.get(id=failing)
    assert "always fails: fails" in failure.result

    assert task_runs.count("too-slow", "start") == max_attempts
    assert task_runs.count("too-slow", "finish") == 0
    assert "timeout" in Failure.objects.get(id=slow).result.lower()
    assert Failure.objects.count() == 2


@pytest.mark.slow
def test_qhealth_sees_a_live_cluster_listed_after_a_dead_one(live_env, start_cluster):
    # The stats of a cluster that died stay listed in the cache until they expire;
    # django-q2 1.11.1 then skipped the next cluster (see django_q_fixes.py).
    cluster = start_cluster()
    wait_until_running(cluster)
    assert wait_for(Stat.get_all, timeout=20), cluster.log()
    cache = get_broker().cache
    cache.set(Conf.Q_STAT, [f"{Conf.Q_STAT}:dead-cluster", *cache.get(Conf.Q_STAT)])

    health = run_manage("qhealth", env=live_env)
    assert health.returncode == 0, health.stderr + cluster.log()


@pytest.mark.slow
def test_two_clusters_with_a_safe_retry_run_each_task_once(live_env, start_cluster, task_runs):
    # The smallest retry check E002 accepts for these timings: tasks that wait in
    # memory are never delivered a second time.
    timing = {"DJANGO_Q_WORKERS": "1", "DJANGO_Q_QUEUE_LIMIT": "1", "DJANGO_Q_TIMEOUT": "2"}
    retry = safe_retry(timeout=2, queue_limit=1, workers=1)
    keys = [f"slow-{n}" for n in range(8)]
    for key in keys:
        async_task("tests.tasks.sleep_and_record", key, 1)
    clusters = [start_cluster(DJANGO_Q_RETRY=str(retry), **timing) for _ in range(2)]

    def all_finished():
        return all(task_runs.count(key, "finish") for key in keys)

    assert wait_for(all_finished, timeout=60), clusters[0].log() + clusters[1].log()
    for key in keys:
        assert [event for _, event in task_runs.events(key)] == ["start", "finish"], key


def queued(lock):
    return OrmQ.objects.create(key=Conf.CLUSTER_NAME, payload="-", lock=lock)


@pytest.mark.django_db
def test_a_task_held_with_no_result_since_means_results_are_not_saved():
    now = timezone.now()
    limit = Conf.TIMEOUT + SLACK  # held longer than any task runs, and still locked:
    queued(lock=now + timedelta(seconds=(Conf.RETRY - limit) / 2))
    assert progress_problem(now).startswith("results are not being saved")


@pytest.mark.django_db
def test_tasks_waiting_while_nothing_is_taken_or_finished_mean_a_stuck_queue():
    now = timezone.now()
    queued(lock=now - timedelta(seconds=Conf.TIMEOUT + 60))
    assert progress_problem(now).startswith("the queue is not moving")


@pytest.mark.django_db
def test_a_busy_queue_that_moves_is_healthy():
    now = timezone.now()
    queued(lock=now - timedelta(seconds=Conf.TIMEOUT + 60))  # a backlog
    queued(lock=now + timedelta(seconds=Conf.RETRY - 1))  # taken a second ago
    Task.objects.create(
        id="done", name="done", func="x", cluster=Conf.CLUSTER_NAME, started=now, stopped=now
    )
    assert progress_problem(now) is None


@pytest.mark.slow
def test_a_standard_task_that_failed_and_will_be_retried_is_ready(monkeypatch, start_cluster):
    monkeypatch.setattr(Conf, "MAX_ATTEMPTS", 3)
    start_cluster(DJANGO_Q_MAX_ATTEMPTS="3")
    result = fail_on_purpose.enqueue("disk full")

    def failed_once():
        result.refresh()
        return result.errors

    assert wait_for(failed_once, timeout=30)
    assert result.status == TaskResultStatus.READY  # delivered again after `retry`
    assert result.errors[0].exception_class is DeliberateFailure
    assert result.attempts == 1


@pytest.mark.slow
def test_workers_that_die_use_their_attempts_and_the_last_ends_as_a_failure(
    live_env, start_cluster, task_runs, queued_tasks
):
    # A SIGKILLed worker (the OOM killer, a segfault) and one stuck in C code past its
    # timeout, which the guard kills: neither saves a result, and each death is an
    # attempt. Timings compressed below check E002's bound: retry covers the kill of a
    # worker stuck past timeout + the guard's 3 s margin.
    max_attempts = 2
    cluster = start_cluster(
        DJANGO_Q_TIMEOUT="1",
        DJANGO_Q_RETRY="6",
        DJANGO_Q_MAX_ATTEMPTS=str(max_attempts),
        DJANGO_Q_WORKERS="2",
        DJANGO_ADMINS="ops@example.com",  # the console email backend: mails in the log
        skip_checks=True,
    )
    killed = async_task("tests.tasks.die_and_record", "killed")
    stuck = async_task("tests.tasks.stick_in_c_and_record", "stuck")

    def both_ended():
        return Failure.objects.filter(id__in=[killed, stuck]).count() == 2 and queued_tasks() == 0

    assert wait_for(both_ended, timeout=45), cluster.log()[-3000:]
    assert task_runs.count("killed", "run") == max_attempts
    assert task_runs.count("stuck", "start") == max_attempts
    for failure in Failure.objects.filter(id__in=[killed, stuck]):
        assert failure.attempt_count == max_attempts
        assert f"attempt {max_attempts} of {max_attempts} ended without a result" in failure.result
    assert cluster.popen.poll() is None  # the cluster went on

    def unfolded_log():
        return re.sub(r"\n\s+", " ", cluster.log())  # long mail headers are folded

    # The mail follows the acknowledgement that both_ended() saw: wait for it.
    subjects = [
        f"Task failed: tests.tasks.{name}" for name in ("die_and_record", "stick_in_c_and_record")
    ]
    assert wait_for(lambda: all(subject in unfolded_log() for subject in subjects), timeout=10)
    log = unfolded_log()
    assert [log.count(subject) for subject in subjects] == [1, 1]  # one mail each


@pytest.mark.django_db(transaction=True)
def test_each_claim_of_a_task_is_a_delivery_and_one_past_max_attempts_ends_it(monkeypatch):
    monkeypatch.setattr(Conf, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(Conf, "RETRY", 60)
    broker = get_broker()
    task_id = async_task("tests.tasks.record_run", "claimed")
    queue = OrmQ.objects.filter(key=Conf.CLUSTER_NAME)

    def claim_again():  # as if the worker that had it died and its claim expired
        queue.update(lock=timezone.now() - timedelta(seconds=1))
        return broker.dequeue()

    [(ack_id, first)] = claim_again()
    assert "attempt" not in SignedPackage.loads(first)
    assert Claim.objects.get(pk=ack_id).deliveries == 1
    [(_, second)] = claim_again()
    assert SignedPackage.loads(second)["attempt"] == 2  # the worker's policy reads it
    assert claim_again() is None  # a third delivery: out of attempts, ended instead
    failure = Failure.objects.get(id=task_id)
    assert failure.attempt_count == 2
    assert "attempt 2 of 2 ended without a result" in failure.result
    assert not queue.exists()
    assert prune_claims() == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_returned_before_it_started_gives_its_delivery_back():
    broker = get_broker()
    async_task("tests.tasks.record_run", "returned")
    [(ack_id, payload)] = broker.dequeue()
    task_queue = queue_module.Queue()
    task_queue.put({**SignedPackage.loads(payload), "ack_id": ack_id})
    assert return_tasks_not_started(task_queue, broker) == 1
    assert Claim.objects.get(pk=ack_id).deliveries == 0


def held_by(pusher, taken_ago):
    row = queued(lock=timezone.now() + timedelta(seconds=Conf.RETRY - taken_ago))
    Claim.objects.create(queue_id=row.pk, deliveries=1, pusher=pusher)


@pytest.mark.django_db
def test_tasks_held_by_a_pusher_no_live_cluster_has_are_reported():
    live = SimpleNamespace(host="web-1", pusher=101)
    held_by("web-1:101", taken_ago=SLACK + 5)
    assert abandoned_tasks_problem(timezone.now(), [live]) is None
    held_by("web-2:202", taken_ago=SLACK + 5)
    problem = abandoned_tasks_problem(timezone.now(), [live])
    assert problem.startswith("1 task(s) held by a cluster that is no longer alive")
    assert "(pusher web-2:202)" in problem


@pytest.mark.django_db
def test_a_task_just_taken_is_not_reported_before_its_cluster_could_report_its_pusher():
    held_by("web-3:303", taken_ago=1)
    assert abandoned_tasks_problem(timezone.now(), []) is None


@pytest.mark.slow
def test_qhealth_reports_the_tasks_of_a_dead_cluster_while_another_saves_results(
    live_env, start_cluster, task_runs
):
    # A long retry keeps the dead cluster's task locked through the test.
    timing = {"DJANGO_Q_TIMEOUT": "5", "DJANGO_Q_RETRY": "60", "DJANGO_Q_QUEUE_LIMIT": "2"}
    dead = start_cluster(**timing)
    async_task("tests.tasks.sleep_and_record", "held", 60)
    assert wait_for(lambda: task_runs.count("held", "start"), 20), dead.log()
    os.killpg(dead.pid, signal.SIGKILL)
    dead.popen.wait(timeout=10)

    live = start_cluster(**timing)
    wait_until_running(live)
    async_task("tests.tasks.record_run", "after")
    assert wait_for(lambda: Task.objects.filter(success=True).exists(), 20), live.log()

    def reported():
        health = run_manage("qhealth", env={**live_env, **timing})  # the clusters' retry
        return health.returncode != 0 and "no longer alive" in health.stderr + health.stdout

    assert wait_for(reported, timeout=30, interval=1), live.log()[-3000:]
