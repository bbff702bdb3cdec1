"""The ORM broker tuned for PostgreSQL (taskqueue/brokers/postgresql.py): one statement
per step, the longest-waiting tasks first, and concurrent claims that skip each other's
rows. test_orm_broker.py runs two real clusters on one database with it.
"""

import re
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ

from taskqueue.brokers.postgresql import PostgresBroker

pytestmark = pytest.mark.django_db

CLAIMERS = 4


@pytest.fixture
def broker(monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0.01)  # an empty queue sleeps this long
    broker = PostgresBroker(list_key=Conf.CLUSTER_NAME)
    broker.purge_queue()
    return broker


def statements(queries):
    """The first word of each statement, the test's own savepoints left out."""
    words = [re.match(r"\w+", query["sql"]).group() for query in queries]
    return [word for word in words if word not in ("SAVEPOINT", "RELEASE")]


def test_the_cluster_uses_the_tuned_broker():
    assert settings.Q_CLUSTER["broker_class"] == "taskqueue.brokers.postgresql.PostgresBroker"
    assert isinstance(get_broker(), PostgresBroker)


def test_one_statement_enqueues_claims_and_acknowledges(broker):
    with CaptureQueriesContext(connection) as enqueue:
        task_id = broker.enqueue("payload")
    with CaptureQueriesContext(connection) as claim:
        assert broker.dequeue() == [(task_id, "payload")]
    with CaptureQueriesContext(connection) as ack:
        broker.acknowledge(task_id)
    # The claim's second statement counts the delivery (brokers/orm.py).
    assert statements([*enqueue, *claim, *ack]) == ["INSERT", "UPDATE", "INSERT", "DELETE"]
    assert any("FOR UPDATE SKIP LOCKED" in query["sql"] for query in claim)
    assert not OrmQ.objects.exists()


def test_the_longest_waiting_tasks_are_claimed_first_and_locked_for_retry(broker, monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 2)
    ids = [broker.enqueue(f"payload-{n}") for n in range(3)]
    # The last one enqueued has waited longest: its claim expired before the others came.
    OrmQ.objects.filter(pk=ids[2]).update(lock=timezone.now() - timedelta(minutes=5))
    taken = timezone.now()
    assert broker.dequeue() == sorted([(ids[2], "payload-2"), (ids[0], "payload-0")])
    assert broker.dequeue() == [(ids[1], "payload-1")]
    assert broker.dequeue() is None
    other = PostgresBroker(list_key="another-cluster")
    other.enqueue("theirs")
    assert broker.dequeue() is None  # another queue's task is left alone
    locks = OrmQ.objects.filter(pk__in=ids).values_list("lock", flat=True)
    assert all(lock >= taken + timedelta(seconds=Conf.RETRY - 1) for lock in locks)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_each_task_once(broker):
    """CLAIMERS threads, each with its own connection, claim at once until the queue is
    empty: every task is taken, by one of them only."""
    ids = {broker.enqueue(f"payload-{n}") for n in range(200)}
    start = threading.Barrier(CLAIMERS)
    claimed = [[] for _ in range(CLAIMERS)]

    def claim_all(mine):
        start.wait(timeout=10)
        try:
            own = PostgresBroker(list_key=Conf.CLUSTER_NAME)
            while (tasks := own.dequeue()) is not None:
                mine.extend(task_id for task_id, _ in tasks)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_all, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [task_id for mine in claimed for task_id in mine]
    assert sorted(every) == sorted(ids)  # all taken, none twice
    assert sum(1 for mine in claimed if mine) > 1  # they claimed at the same time
