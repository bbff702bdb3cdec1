"""The Redis broker: the queue lives in Redis, which has no delivery receipts.

The cluster test starts a real qcluster (and stops it, whatever happens); the restart
tests start Redis servers of their own (Debian's redis-server; skipped without it,
unless REQUIRE_SERVICES=1). docs/broker-redis.md describes what that changes.
"""

import os
import signal
import time

import pytest
import redis
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django_q.brokers import get_broker
from django_q.models import Failure
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from taskqueue.brokers.redis import retries_key
from taskqueue.workarounds.brokers import UPSTREAM_GET_BROKER

from .conftest import REDIS_APPEND_ONLY, enqueue_elsewhere, redis_url
from .processes import run_manage, wait_for

NOTHING_ON_DISK = ("--save", "", "--appendonly", "no")


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
def test_a_failed_attempt_waits_in_redis_for_its_retry(live_env, start_cluster, task_runs):
    cluster = start_cluster(DJANGO_TASK_RETRY_DELAY="600")
    failing = async_task("tests.tasks.fail_and_record", "fails")
    assert wait_for(lambda: Failure.objects.filter(id=failing).exists(), 30), cluster.log()
    connection = get_broker().connection
    [package] = connection.zrange(retries_key(), 0, -1)
    assert SignedPackage.loads(package)["attempt"] == 2  # the attempt count is carried
    assert connection.zscore(retries_key(), package) > time.time() + 500
    assert task_runs.count("fails", "run") == 1
    connection.delete(retries_key())


def waiting_tasks(port):
    client = redis.Redis.from_url(redis_url(port))
    try:
        return client.llen(get_broker().list_key)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("options", "kept"), [(NOTHING_ON_DISK, 0), (REDIS_APPEND_ONLY, 5)], ids=["nothing", "aof"]
)
def test_a_redis_crash_keeps_the_waiting_tasks_only_with_an_append_only_file(
    redis_server, options, kept
):
    server, port = redis_server(options)
    enqueue_elsewhere({"REDIS_URL": redis_url(port)}, "math.floor", *[(n,) for n in range(5)])
    assert waiting_tasks(port) == 5
    time.sleep(1.5)  # appendfsync everysec: what is older than a second is on disk
    os.kill(server.pid, signal.SIGKILL)
    server.popen.wait(timeout=10)
    redis_server(options, port=port)
    assert waiting_tasks(port) == kept


@pytest.mark.parametrize(
    ("options", "warned"),
    [(NOTHING_ON_DISK, True), (REDIS_APPEND_ONLY, False)],
    ids=["nothing", "aof"],
)
def test_check_deploy_warns_when_redis_keeps_no_append_only_file(redis_server, options, warned):
    _, port = redis_server(options)
    checked = run_manage("check", "--deploy", env={"REDIS_URL": redis_url(port)})
    output = checked.stdout + checked.stderr
    assert ("taskqueue.W006" in output) is warned, output
    if warned:
        assert "a Redis restart loses every task waiting in it" in output
