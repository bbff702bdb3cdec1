"""The ORM broker tuned for SQLite: each task is claimed once, by one cluster.

The unit tests drive taskqueue/brokers/sqlite.py on the test database; the
last one runs two real clusters on one database and checks that every task ran once.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from taskqueue.brokers.sqlite import HAS_RETURNING, SqliteBroker

from .processes import wait_for, wait_until_running

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["returning", "fallback"])
def broker(request, monkeypatch):
    """The broker, with its RETURNING claim and with upstream's (SQLite < 3.35)."""
    if request.param == "returning" and not HAS_RETURNING:
        pytest.skip("this SQLite has no RETURNING")
    monkeypatch.setattr(SqliteBroker, "returning", request.param == "returning")
    monkeypatch.setattr(Conf, "POLL", 0.01)  # an empty queue sleeps this long
    broker = SqliteBroker(list_key=Conf.CLUSTER_NAME)
    broker.purge_queue()
    return broker


def test_the_cluster_uses_the_tuned_broker():
    broker_class = "taskqueue.brokers.sqlite.SqliteBroker"
    assert settings.Q_CLUSTER["broker_class"] == broker_class
    assert isinstance(get_broker(), SqliteBroker)


def test_tasks_are_claimed_oldest_first_bulk_at_a_time_and_locked_for_retry(broker, monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 2)
    ids = [broker.enqueue(f"payload-{n}") for n in range(3)]
    before = timezone.now()

    first = broker.dequeue()
    second = broker.dequeue()

    assert first == [(ids[0], "payload-0"), (ids[1], "payload-1")]
    assert second == [(ids[2], "payload-2")]
    assert broker.dequeue() is None  # all taken
    for row in OrmQ.objects.all():
        assert row.lock >= before + timedelta(seconds=Conf.RETRY - 1)


def test_a_task_whose_lock_expired_is_claimed_again(broker):
    task_id = broker.enqueue("payload")
    assert broker.dequeue() == [(task_id, "payload")]
    OrmQ.objects.filter(pk=task_id).update(lock=timezone.now() - timedelta(seconds=1))
    assert broker.dequeue() == [(task_id, "payload")]


def test_other_queues_are_left_alone(broker):
    other = SqliteBroker(list_key="another-cluster")
    other.enqueue("theirs")
    task_id = broker.enqueue("ours")
    assert broker.dequeue() == [(task_id, "ours")]
    assert broker.dequeue() is None
    assert other.queue_size() == 1


def test_an_acknowledged_task_leaves_the_queue(broker):
    kept, done = broker.enqueue("kept"), broker.enqueue("done")
    broker.acknowledge(done)
    assert list(OrmQ.objects.values_list("pk", flat=True)) == [kept]


@pytest.mark.skipif(not HAS_RETURNING, reason="this SQLite has no RETURNING")
def test_each_step_is_one_statement_and_the_claim_counts_its_deliveries():
    broker = SqliteBroker(list_key=Conf.CLUSTER_NAME)
    with CaptureQueriesContext(connection) as enqueue:
        task_id = broker.enqueue("payload")
    with CaptureQueriesContext(connection) as claim:
        broker.dequeue()
    with CaptureQueriesContext(connection) as ack:
        broker.acknowledge(task_id)
    statements = [re.match(r"\w+", query["sql"]).group() for query in [*enqueue, *claim, *ack]]
    # The claim's transaction is a savepoint inside the test's; the INSERT counts a delivery.
    statements = [sql for sql in statements if sql not in ("SAVEPOINT", "RELEASE")]
    assert statements == ["INSERT", "UPDATE", "INSERT", "DELETE"]


@pytest.mark.slow
def test_two_clusters_on_one_database_run_each_task_once(
    live_env, load_env, start_cluster, task_runs
):
    clusters = [start_cluster(**load_env) for _ in range(2)]
    for cluster in clusters:
        wait_until_running(cluster)
    # Enqueued faster than two clusters run them: both claim at the same moments.
    keys = [f"fast-{n}" for n in range(400)]
    for key in keys:
        async_task("tests.tasks.record_run", key)

    def all_ran():
        return task_runs.count() >= len(keys)

    assert wait_for(all_ran, timeout=60), clusters[0].log() + clusters[1].log()
    assert sorted(key for key, _ in task_runs.events()) == sorted(keys)
    for cluster in clusters:  # both took their share
        assert "Processed 'tests.tasks.record_run'" in cluster.log()
