"""The Redis broker: the queue lives in Redis, which has no delivery receipts.

The cluster test starts a real qcluster (and stops it, whatever happens).
docs/broker-redis.md describes what that changes.
"""

import pytest
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django_q.models import Failure
from django_q.tasks import async_task

from .processes import wait_for


def test_the_broker_is_redis():
    assert settings.Q_CLUSTER["redis"].startswith("redis://")
    assert "orm" not in settings.Q_CLUSTER


def test_there_is_no_queued_tasks_admin():
    with pytest.raises(NoReverseMatch):
        reverse("admin:django_q_ormq_changelist")


@pytest.mark.slow
def test_a_failing_task_runs_once_and_is_recorded(live_env, start_cluster, task_runs, queued_tasks):
    # Redis has no delivery receipts: no retry, whatever Q_CLUSTER says.
    cluster = start_cluster()
    failing = async_task("tests.tasks.fail_and_record", "fails")
    assert wait_for(lambda: Failure.objects.filter(id=failing).exists(), 30), cluster.log()
    assert wait_for(lambda: queued_tasks() == 0, 5)
    assert task_runs.count("fails", "run") == 1
    assert Failure.objects.get(id=failing).attempt_count == 1
