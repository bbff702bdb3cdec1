"""Retry policies (taskqueue/retries.py): the delays, the cap and the jitter, "never",
timeouts, the final failure and its one alert, and a policy that changes between two
attempts; with real clusters, on this project's broker. docs/tasks.md describes them.
"""

import re
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone
from django_q.models import Failure, Success
from django_q.tasks import async_task

from taskqueue.backend import TaskResultStatus
from taskqueue.retries import (
    DEFAULT_JITTER,
    MAX_ATTEMPTS,
    MAX_DELAY,
    RetryPolicy,
    next_attempt,
    policy_for,
    retry,
)

from . import standard_tasks
from .processes import stop_process_group, wait_for, wait_until_running

# How late an attempt may start after its retry falls due: the pusher polls the queue
# (and, with Redis, moves due retries every 0.5 s, then waits up to a second for one).
LATENESS = 2.5


class Bounds:
    """A random source whose uniform() returns the low or the high bound."""

    def __init__(self, high):
        self.high = high

    def uniform(self, low, high):
        return high if self.high else low


def test_exponential_delays_double_up_to_the_cap():
    policy = RetryPolicy(attempts=6, delay=10, cap=35, jitter=0)
    assert [policy.delay_before(attempt) for attempt in range(2, 7)] == [10, 20, 35, 35, 35]


def test_fixed_delays_stay_the_same():
    policy = RetryPolicy(attempts=4, delay=10, backoff="fixed", jitter=0)
    assert [policy.delay_before(attempt) for attempt in range(2, 5)] == [10, 10, 10]


def test_jitter_moves_a_delay_by_at_most_its_fraction():
    policy = RetryPolicy(attempts=3, delay=10, jitter=0.2)
    assert policy.delay_before(3, rng=Bounds(high=False)) == pytest.approx(16)
    assert policy.delay_before(3, rng=Bounds(high=True)) == pytest.approx(24)
    assert all(8 <= policy.delay_before(2) <= 12 for _ in range(100))


def test_a_task_without_a_policy_gets_the_default(settings):
    policy = policy_for("tests.tasks.fail_then_succeed")
    assert policy.attempts == settings.Q_CLUSTER["max_attempts"]
    assert policy.delay == settings.TASK_RETRY_DELAY
    assert policy.backoff == "exponential"


def test_the_declared_policy_applies_to_a_task_and_to_a_plain_function():
    assert policy_for("tests.tasks.never_retried").attempts == 1
    assert policy_for(standard_tasks.fail_on_each_attempt).attempts == 2
    assert policy_for("tests.standard_tasks.fail_on_each_attempt").delay == 2


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((), {"attempts": 0}, "attempts must be a whole number from 1 to"),
        ((), {"attempts": -1}, "attempts must be a whole number"),
        ((), {"attempts": MAX_ATTEMPTS + 1}, "attempts must be a whole number"),
        ((), {"attempts": 2.5}, "attempts must be a whole number"),
        ((), {"attempts": True}, "attempts must be a whole number"),
        ((), {"delay": -1}, "delay must be a number of seconds from 0 to"),
        ((), {"delay": MAX_DELAY + 1}, "delay must be a number of seconds"),
        ((), {"delay": "60"}, "delay must be a number of seconds"),
        ((), {"delay": 10, "cap": 5}, "cap must be at least delay"),
        ((), {"cap": 10**9}, "cap must be a number of seconds"),
        ((), {"backoff": "linear"}, "backoff must be one of 'exponential', 'fixed'"),
        ((), {"jitter": 2}, "jitter must be a fraction from 0 to 1"),
        ((), {"tries": 3}, "retry() has no option tries"),
        (("sometimes",), {}, "the policies by name are 'never', 'default'"),
        (("never",), {"attempts": 3}, 'retry("never") is one attempt'),
    ],
)
def test_a_bad_policy_is_refused_when_the_task_is_declared(args, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        retry(*args, **options)


def run_times(task_runs, key):
    """When each attempt of key began (tests.tasks.record_time)."""
    return [float(event) for _, event in task_runs.events(key) if event[0].isdigit()]


def gaps(times):
    return [later - earlier for earlier, later in pairwise(times)]


@pytest.mark.slow
def test_a_task_that_fails_twice_then_succeeds_waits_each_delay(start_cluster, task_runs):
    cluster = start_cluster()
    task_id = async_task("tests.tasks.backing_off", "flaky", 2)
    assert wait_for(lambda: Success.objects.filter(id=task_id).exists(), 30), cluster.log()[-3000:]
    first, second = gaps(run_times(task_runs, "flaky"))
    print(f"fails twice, then succeeds: retried after {first:.2f} s, then {second:.2f} s")
    assert 1 <= first < 1 + LATENESS  # never early
    assert 2 <= second < 2 + LATENESS  # exponential: twice the first delay
    assert Success.objects.get(id=task_id).attempt_count == 3


@pytest.mark.slow
def test_capped_jittered_retries_end_in_one_failure_and_one_alert(start_cluster, task_runs):
    cluster = start_cluster(DJANGO_ADMINS="ops@example.com")  # console mails: in the log
    task_id = async_task("tests.tasks.capped_with_jitter", "failing", 10)
    assert wait_for(lambda: Failure.objects.filter(id=task_id, attempt_count=5).exists(), 40), (
        cluster.log()[-3000:]
    )
    delays = gaps(run_times(task_runs, "failing"))
    assert len(delays) == 4
    # 1.5 s, capped at 1.5 s (doubling would reach 12 s), give or take half of it.
    assert all(0.75 <= delay < 2.25 + LATENESS for delay in delays), delays
    assert wait_for(lambda: "Task failed: tests.tasks.capped_with_jitter" in cluster.log(), 10)
    mails = re.sub(r"\n\s+", " ", cluster.log())
    assert mails.count("Task failed: tests.tasks.capped_with_jitter") == 1


@pytest.mark.slow
def test_never_retry_fails_at_once(start_cluster, task_runs, queued_tasks):
    cluster = start_cluster()
    task_id = async_task("tests.tasks.never_retried", "once")
    assert wait_for(lambda: Failure.objects.filter(id=task_id).exists(), 20), cluster.log()
    assert wait_for(lambda: queued_tasks() == 0, 5)
    assert len(run_times(task_runs, "once")) == 1
    assert Failure.objects.get(id=task_id).attempt_count == 1


@pytest.mark.slow
def test_a_timeout_is_an_attempt(start_cluster, task_runs):
    # Timings compressed below check E002's bound: one task, nothing waits in memory.
    cluster = start_cluster(DJANGO_Q_TIMEOUT="1", DJANGO_Q_RETRY="10", skip_checks=True)
    task_id = async_task("tests.tasks.timing_out", "slow")
    assert wait_for(lambda: Failure.objects.filter(id=task_id, attempt_count=2).exists(), 30), (
        cluster.log()[-3000:]
    )
    assert task_runs.count("slow", "start") == 2
    assert "timeout" in Failure.objects.get(id=task_id).result.lower()


@pytest.mark.slow
def test_a_task_s_own_timeout_applies_to_its_retries(start_cluster, task_runs):
    cluster = start_cluster()
    task_id = async_task("tests.tasks.timing_out", "own", timeout=1)  # it sleeps 30 s
    assert wait_for(lambda: Failure.objects.filter(id=task_id, attempt_count=2).exists(), 20), (
        cluster.log()[-3000:]
    )
    assert task_runs.count("own", "start") == 2


@pytest.mark.slow
def test_a_changed_policy_applies_to_the_attempts_after_it(start_cluster, task_runs):
    # The default policy, from the environment: 2 attempts 3 s apart, then 3, 1 s apart.
    before = start_cluster(DJANGO_Q_MAX_ATTEMPTS="2", DJANGO_TASK_RETRY_DELAY="3")
    task_id = async_task("tests.tasks.fail_then_succeed", "changed", 10)
    assert wait_for(lambda: Failure.objects.filter(id=task_id).exists(), 20), before.log()
    stop_process_group(before)
    after = start_cluster(DJANGO_Q_MAX_ATTEMPTS="3", DJANGO_TASK_RETRY_DELAY="1")
    wait_until_running(after)
    assert wait_for(lambda: Failure.objects.filter(id=task_id, attempt_count=3).exists(), 30), (
        after.log()[-3000:]
    )
    first, second = gaps(run_times(task_runs, "changed"))
    low, high = 1 - DEFAULT_JITTER, 1 + DEFAULT_JITTER  # the default policy's jitter
    assert 3 * low <= first < 3 * high + LATENESS  # scheduled by the first cluster's policy
    assert low <= second < high + LATENESS  # by the second's


@pytest.mark.slow
def test_a_standard_task_is_ready_with_its_errors_until_its_last_attempt(start_cluster, task_runs):
    cluster = start_cluster()
    result = standard_tasks.fail_on_each_attempt.enqueue("flaky")

    def failed_once():
        result.refresh()
        return result.errors

    assert wait_for(failed_once, timeout=20), cluster.log()[-3000:]
    assert result.status == TaskResultStatus.READY  # the next attempt is due in 2 s
    assert result.attempts == 1
    assert "attempt 1 of flaky fails" in result.errors[0].traceback
    due = next_attempt(result.id)
    assert timezone.now() - timedelta(seconds=1) < due < timezone.now() + timedelta(seconds=3)

    def failed_for_good():
        result.refresh()
        return result.status == TaskResultStatus.FAILED

    assert wait_for(failed_for_good, timeout=20), cluster.log()[-3000:]
    assert result.attempts == 2
    assert "attempt 2 of flaky fails" in result.errors[0].traceback
    assert next_attempt(result.id) is None
