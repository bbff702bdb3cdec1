"""The Redis broker: the queue lives in Redis, which has no delivery receipts.

The cluster test starts a real qcluster (and stops it, whatever happens).
docs/broker-redis.md describes what that changes.
"""

import pytest
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django_q.brokers import get_broker
from django_q.models import Failure
from django_q.tasks import async_task

from taskqueue.workarounds.brokers import UPSTREAM_GET_BROKER

from .processes import wait_for


def test_the_broker_is_redis():
    assert settings.Q_CLUSTER["redis"].startswith("redis://")
    assert "orm" not in settings.Q_CLUSTER


def test_there_is_no_queued_tasks_admin():
    with pytest.raises(NoReverseMatch):
        reverse("admin:django_q_ormq_changelist")


@pytest.fixture
def connections_received(live_env):
    """How many connections Redis has accepted so far, read on a connection of its own."""
    client = get_broker().connection
    yield lambda: client.info("stats")["total_connections_received"]
    get_broker().purge_queue()


def test_enqueues_reuse_one_redis_connection(connections_received):
    async_task("tests.tasks.record_run", "warm-up")
    before = connections_received()
    for n in range(20):
        async_task("tests.tasks.record_run", f"key-{n}")
    assert connections_received() == before


def test_upstream_opens_a_redis_connection_per_enqueue(connections_received, monkeypatch):
    # Reproduces what django_q_fixes.shared_broker works around.
    monkeypatch.setattr("django_q.tasks.get_broker", UPSTREAM_GET_BROKER)
    before = connections_received()
    for n in range(20):
        async_task("tests.tasks.record_run", f"key-{n}")
    assert connections_received() - before >= 20


@pytest.mark.slow
def test_a_failing_task_runs_once_and_is_recorded(live_env, start_cluster, task_runs, queued_tasks):
    # Redis has no delivery receipts: no retry, whatever Q_CLUSTER says.
    cluster = start_cluster()
    failing = async_task("tests.tasks.fail_and_record", "fails")
    assert wait_for(lambda: Failure.objects.filter(id=failing).exists(), 30), cluster.log()
    assert wait_for(lambda: queued_tasks() == 0, 5)
    assert task_runs.count("fails", "run") == 1
    assert Failure.objects.get(id=failing).attempt_count == 1
